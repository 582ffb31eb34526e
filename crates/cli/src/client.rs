//! Client plumbing on librdkafka: configuration, a quiet context, metadata and
//! error messages that fit on one line.

pub mod command_config;
pub mod java_properties;
pub mod wire_settings;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use moldau_wire::{ClientSettings, Connection, WireError, WireSecurity};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;

use crate::args::ConnectArgs;
use command_config::SecurityProtocol;

/// Routes librdkafka's own logs and errors to `tracing` at debug level, so that a
/// refused connection is not printed as a screenful of retries: the command reports
/// the outcome itself, as one line. `RUST_LOG=librdkafka=debug` shows them.
#[derive(Clone, Copy, Default)]
pub struct QuietContext;

impl ClientContext for QuietContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        tracing::debug!(target: "librdkafka", ?level, "{fac}: {log_message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(target: "librdkafka", "{error}: {reason}");
    }
}

/// Why a secured cluster does not answer although it is up. librdkafka reports a failed
/// TLS handshake or SASL authentication to the caller only as a transport failure or a
/// timeout (the details go to its event queue, which nobody polls during a metadata or
/// admin request), so the protocol client tries the first bootstrap server with the same
/// settings and tells what went wrong. Asked once per command.
fn security_diagnosis(conn: &ConnectArgs) -> Option<String> {
    static DIAGNOSIS: OnceLock<Option<String>> = OnceLock::new();
    DIAGNOSIS
        .get_or_init(|| {
            let properties = command_config::client_properties(conn).ok()?;
            if command_config::security_protocol(&properties).ok()? == SecurityProtocol::Plaintext {
                return None;
            }
            let settings = ClientSettings {
                client_id: properties
                    .get("client.id")
                    .unwrap_or("moldau-cli")
                    .to_string(),
                timeout: conn.request_timeout().min(Duration::from_secs(5)),
                security: WireSecurity::from_librdkafka(&*properties).ok()?,
            };
            let addr = conn
                .bootstrap_server
                .split(',')
                .map(str::trim)
                .find(|a| !a.is_empty())?
                .to_string();
            // A thread of its own: the caller may be inside a runtime already.
            let probe = move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                match runtime.block_on(Connection::open(&addr, &settings)) {
                    Err(e @ (WireError::Tls { .. } | WireError::Authentication { .. })) => {
                        Some(e.to_string())
                    }
                    _ => None,
                }
            };
            std::thread::spawn(probe).join().ok().flatten()
        })
        .clone()
}

impl ConsumerContext for QuietContext {}

/// The configuration every client starts from; the `--command-config` file comes after
/// the defaults, and `-X` properties come last and win.
pub fn base_config(conn: &ConnectArgs) -> anyhow::Result<ClientConfig> {
    config_with_defaults(conn, &[])
}

/// Producers place keyed records as Kafka's Java client does (murmur2), so that
/// records with one key land in one partition whichever tool wrote them; a record
/// that cannot be delivered fails after the request timeout.
pub fn producer_config(conn: &ConnectArgs) -> anyhow::Result<ClientConfig> {
    let timeout_ms = conn.request_timeout_ms.to_string();
    config_with_defaults(
        conn,
        &[
            ("partitioner", "murmur2_random"),
            ("message.timeout.ms", &timeout_ms),
        ],
    )
}

/// Idempotence on whenever `acks` allows it (librdkafka requires acks=all for it),
/// as the Java client and kafka-console-producer do, unless set explicitly: a retried
/// batch is then written once.
pub fn default_idempotence(config: &mut ClientConfig) {
    let acks_all = matches!(config.get("acks"), None | Some("all" | "-1"));
    if config.get("enable.idempotence").is_none() && acks_all {
        config.set("enable.idempotence", "true");
    }
}

fn config_with_defaults(
    conn: &ConnectArgs,
    defaults: &[(&str, &str)],
) -> anyhow::Result<ClientConfig> {
    let properties = command_config::client_properties(conn)?;
    let mut config = ClientConfig::new();
    // librdkafka accepts socket timeouts up to 5 minutes.
    let socket_timeout_ms = conn.request_timeout_ms.min(300_000).to_string();
    config
        .set("bootstrap.servers", &conn.bootstrap_server)
        .set("client.id", "moldau-cli")
        .set("socket.timeout.ms", &socket_timeout_ms)
        .set("log.connection.close", "false");
    for (key, value) in defaults {
        config.set(*key, *value);
    }
    for (key, value) in properties.iter() {
        config.set(key, value);
    }
    Ok(config)
}

pub fn admin_client(conn: &ConnectArgs) -> anyhow::Result<AdminClient<QuietContext>> {
    AdminClient::from_config_and_context(&base_config(conn)?, QuietContext)
        .map_err(|e| creation_error("admin client", e))
}

pub fn admin_options(conn: &ConnectArgs) -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(conn.request_timeout()))
        .operation_timeout(Some(conn.request_timeout()))
}

/// A consumer without a group: used for metadata, offsets and `assign()`-based reads.
/// Consumers never ask the broker to auto-create a topic, unlike producers.
pub fn plain_consumer(
    conn: &ConnectArgs,
    extra: &[crate::args::KeyValue],
) -> anyhow::Result<BaseConsumer<QuietContext>> {
    let mut config = base_config(conn)?;
    // librdkafka's assign() needs a group id; the group never joins or commits.
    config
        .set("group.id", "moldau-cli")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("allow.auto.create.topics", "false");
    for kv in extra {
        config.set(&kv.key, &kv.value);
    }
    BaseConsumer::from_config_and_context(&config, QuietContext)
        .map_err(|e| creation_error("consumer", e))
}

/// Why a client could not be created; usually a bad `-X` or `--*-props` property.
pub fn creation_error(client: &str, e: KafkaError) -> anyhow::Error {
    match e {
        KafkaError::ClientConfig(_, desc, key, value) => {
            anyhow!("invalid client property {key}={value}: {}", desc.trim())
        }
        e => anyhow!("cannot create {client}: {e}"),
    }
}

/// A runtime for the admin API's futures.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start async runtime")
}

/// One partition as metadata reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PartitionInfo {
    pub partition: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One topic as metadata reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TopicInfo {
    pub topic: String,
    pub partition_count: usize,
    pub replication_factor: usize,
    pub partitions: Vec<PartitionInfo>,
}

/// Fetches metadata for one topic (`Some`) or all topics (`None`), bounded by the
/// request timeout, with an error that names the bootstrap servers.
pub fn fetch_metadata<C: ClientContext>(
    client: &rdkafka::client::Client<C>,
    conn: &ConnectArgs,
    topic: Option<&str>,
) -> anyhow::Result<Metadata> {
    client
        .fetch_metadata(topic, conn.request_timeout())
        .map_err(|e| {
            anyhow!(
                "cannot fetch metadata from {}: {}",
                conn.bootstrap_server,
                describe_kafka_error(&e, conn)
            )
        })
}

/// Metadata of topics, sorted by name; a missing named topic is an error.
pub fn topic_infos<C: ClientContext>(
    client: &rdkafka::client::Client<C>,
    conn: &ConnectArgs,
    topic: Option<&str>,
) -> anyhow::Result<Vec<TopicInfo>> {
    // A topic being created (e.g. auto-created by this very request) has no leader
    // for a moment: ask again until the request timeout.
    let deadline = Instant::now() + conn.request_timeout();
    let metadata = loop {
        let metadata = fetch_metadata(client, conn, topic)?;
        let electing = metadata.topics().iter().any(|t| {
            t.error().map(RDKafkaErrorCode::from) == Some(RDKafkaErrorCode::LeaderNotAvailable)
        });
        if !electing || Instant::now() >= deadline {
            break metadata;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut topics = Vec::new();
    for t in metadata.topics() {
        if let Some(err) = t.error() {
            let code = RDKafkaErrorCode::from(err);
            if code == RDKafkaErrorCode::UnknownTopicOrPartition {
                bail!("topic '{}' does not exist", t.name());
            }
            bail!("topic '{}': {}", t.name(), describe_code(code, conn));
        }
        let mut partitions: Vec<PartitionInfo> = t
            .partitions()
            .iter()
            .map(|p| PartitionInfo {
                partition: p.id(),
                leader: p.leader(),
                replicas: p.replicas().to_vec(),
                isr: p.isr().to_vec(),
                error: p.error().map(|e| RDKafkaErrorCode::from(e).to_string()),
            })
            .collect();
        partitions.sort_by_key(|p| p.partition);
        topics.push(TopicInfo {
            topic: t.name().to_string(),
            partition_count: partitions.len(),
            replication_factor: partitions.first().map_or(0, |p| p.replicas.len()),
            partitions,
        });
    }
    topics.sort_by(|a, b| a.topic.cmp(&b.topic));
    Ok(topics)
}

/// Metadata for one existing topic.
pub fn topic_info<C: ClientContext>(
    client: &rdkafka::client::Client<C>,
    conn: &ConnectArgs,
    topic: &str,
) -> anyhow::Result<TopicInfo> {
    let mut topics = topic_infos(client, conn, Some(topic))?;
    match topics.iter().position(|t| t.topic == topic) {
        Some(i) => Ok(topics.swap_remove(i)),
        None => bail!("topic '{topic}' does not exist"),
    }
}

/// A Kafka error in words, with a hint when the cluster was simply not reached.
pub fn describe_kafka_error(e: &KafkaError, conn: &ConnectArgs) -> String {
    let code = match e {
        KafkaError::AdminOp(code) => Some(*code),
        _ => e.rdkafka_error_code(),
    };
    match code {
        Some(code) => describe_code(code, conn),
        None => e.to_string(),
    }
}

/// An error code in words, with a hint when the cluster was simply not reached.
pub fn describe_code(code: RDKafkaErrorCode, conn: &ConnectArgs) -> String {
    let hint = match code {
        RDKafkaErrorCode::OperationTimedOut
        | RDKafkaErrorCode::MessageTimedOut
        | RDKafkaErrorCode::RequestTimedOut
        | RDKafkaErrorCode::AllBrokersDown
        | RDKafkaErrorCode::BrokerTransportFailure
        | RDKafkaErrorCode::Authentication
        | RDKafkaErrorCode::SSL
            if security_diagnosis(conn).is_some() =>
        {
            format!(" ({})", security_diagnosis(conn).unwrap_or_default())
        }
        RDKafkaErrorCode::OperationTimedOut
        | RDKafkaErrorCode::MessageTimedOut
        | RDKafkaErrorCode::RequestTimedOut => format!(
            " (no answer within {} ms; is a broker running at {}?)",
            conn.request_timeout_ms, conn.bootstrap_server
        ),
        RDKafkaErrorCode::AllBrokersDown
        | RDKafkaErrorCode::BrokerTransportFailure
        | RDKafkaErrorCode::Resolve => {
            format!(" (is a broker running at {}?)", conn.bootstrap_server)
        }
        _ => String::new(),
    };
    format!("{code}{hint}")
}

/// Turns an admin result for one resource into a one-line error.
pub fn admin_error(
    action: &str,
    what: &str,
    code: RDKafkaErrorCode,
    conn: &ConnectArgs,
) -> anyhow::Error {
    anyhow!("{action} {what} failed: {}", describe_code(code, conn))
}

/// SIGINT and SIGTERM, caught from the moment this is created.
pub struct ShutdownSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    /// Must be called inside a tokio runtime.
    pub fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(ShutdownSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Resolves on the next SIGINT or SIGTERM.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// A flag raised on SIGINT or SIGTERM, for loops that should stop cleanly
/// (flush what they printed, print their summary).
pub fn stop_on_signal() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    // The handlers are installed before this returns, so no signal is missed.
    let rt = runtime()?;
    let mut signals = {
        let _guard = rt.enter();
        ShutdownSignals::new().context("cannot listen for SIGINT/SIGTERM")?
    };
    let watcher = move || {
        rt.block_on(signals.recv());
        flag.store(true, Ordering::Relaxed);
    };
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(watcher)
        .context("cannot start the signal watcher")?;
    Ok(stop)
}
