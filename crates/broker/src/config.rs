//! Server configuration: Kafka's `server.properties` keys, defaults and validation.
//!
//! A config is read from an optional properties file, then `--override key=value` pairs.
//! Broker-level `log.*` keys become the defaults of every topic's [`LogConfig`]; a topic's
//! own overrides (metadata `Config` records) are applied on top of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use moldau_security::tls::{SslConfig, SslProps};

use moldau_storage::{LogConfig, TOPIC_CONFIGS};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid value {value:?} for config {key}: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
    #[error("cannot read config file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} line {line}: expected key=value, got {text:?}")]
    Syntax {
        path: PathBuf,
        line: usize,
        text: String,
    },
}

impl ConfigError {
    fn invalid(key: &str, value: &str, reason: impl Into<String>) -> Self {
        ConfigError::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

impl From<moldau_storage::ConfigError> for ConfigError {
    fn from(e: moldau_storage::ConfigError) -> Self {
        ConfigError::InvalidValue {
            key: e.key,
            value: e.value,
            reason: e.reason,
        }
    }
}

/// Kafka's security protocol of a listener (`listener.security.protocol.map`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    const ALL: [SecurityProtocol; 4] = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Kafka's id of the protocol (BrokerRegistration's `security_protocol`).
    pub fn id(self) -> i16 {
        match self {
            SecurityProtocol::Plaintext => 0,
            SecurityProtocol::Ssl => 1,
            SecurityProtocol::SaslPlaintext => 2,
            SecurityProtocol::SaslSsl => 3,
        }
    }

    fn parse(name: &str) -> Option<SecurityProtocol> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// How connections of one listener (served, or opened to it) are secured.
#[derive(Clone, Debug)]
pub struct ListenerSecurity {
    pub protocol: SecurityProtocol,
    /// The listener's `ssl.*` settings, loaded (`listener.name.<name>.ssl.*` over `ssl.*`):
    /// for SSL and SASL_SSL only.
    pub ssl: Option<Arc<SslConfig>>,
    /// The listener's SASL settings: for SASL_PLAINTEXT and SASL_SSL only.
    pub sasl: Option<Arc<crate::sasl::SaslListenerConfig>>,
    /// The mechanism this node authenticates with when it connects to this listener of its
    /// peers (`sasl.mechanism.inter.broker.protocol` for the inter-broker listener,
    /// `sasl.mechanism.controller.protocol` for the controller listener).
    pub client_mechanism: Option<crate::sasl::SaslMechanism>,
}

/// A listener endpoint, `NAME://host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub listener_name: String,
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    fn parse_list(key: &str, value: &str) -> Result<Vec<Endpoint>, ConfigError> {
        let mut endpoints = Vec::new();
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, rest) = item
                .split_once("://")
                .ok_or_else(|| ConfigError::invalid(key, value, "expected NAME://host:port"))?;
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| ConfigError::invalid(key, value, "expected NAME://host:port"))?;
            let port: u16 = port
                .parse()
                .map_err(|_| ConfigError::invalid(key, value, "port must be 0..65535"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if name.is_empty() {
                return Err(ConfigError::invalid(key, value, "listener name is empty"));
            }
            endpoints.push(Endpoint {
                listener_name: name.to_string(),
                host: host.to_string(),
                port,
            });
        }
        if endpoints.is_empty() {
            return Err(ConfigError::invalid(key, value, "no listener given"));
        }
        Ok(endpoints)
    }
}

/// Keys that Kafka has and Moldau accepts without acting on them (single node, no TLS yet):
/// they are not "unknown", so no warning.
const ACCEPTED_KEYS: &[&str] = &[
    "broker.id",
    "listener.security.protocol.map",
    "num.network.threads",
    "num.io.threads",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
];

/// Broker settings that are not topic-config defaults: (key, default, type).
const BROKER_KEYS: &[(&str, &str, &str)] = &[
    ("node.id", "1", "int"),
    ("process.roles", "broker,controller", "list"),
    ("controller.quorum.voters", "", "list"),
    ("controller.quorum.bootstrap.servers", "", "list"),
    ("controller.listener.names", "", "list"),
    ("inter.broker.listener.name", "", "string"),
    ("controller.quorum.election.timeout.ms", "1000", "int"),
    ("controller.quorum.fetch.timeout.ms", "2000", "int"),
    (
        "metadata.log.max.record.bytes.between.snapshots",
        "20971520",
        "long",
    ),
    ("metadata.log.max.snapshot.interval.ms", "3600000", "long"),
    ("broker.heartbeat.interval.ms", "2000", "int"),
    ("broker.session.timeout.ms", "9000", "int"),
    ("broker.rack", "", "string"),
    // Follower replication (`ReplicationConfig`).
    ("replica.lag.time.max.ms", "30000", "long"),
    ("replica.fetch.max.bytes", "1048576", "int"),
    ("replica.fetch.min.bytes", "1", "int"),
    ("replica.fetch.wait.max.ms", "500", "int"),
    ("replica.fetch.response.max.bytes", "10485760", "int"),
    ("replica.fetch.backoff.ms", "1000", "int"),
    ("replica.socket.timeout.ms", "30000", "int"),
    ("num.replica.fetchers", "1", "int"),
    ("replica.selector.class", "", "string"),
    ("unclean.leader.election.enable", "false", "boolean"),
    // Leader balancing on the active controller.
    ("auto.leader.rebalance.enable", "true", "boolean"),
    ("leader.imbalance.check.interval.seconds", "300", "long"),
    ("leader.imbalance.per.broker.percentage", "10", "int"),
    ("listeners", "PLAINTEXT://127.0.0.1:9092", "string"),
    ("advertised.listeners", "", "string"),
    ("log.dirs", "./data", "string"),
    ("log.dir", "./data", "string"),
    ("metadata.log.dir", "", "string"),
    ("num.partitions", "1", "int"),
    ("default.replication.factor", "1", "int"),
    ("auto.create.topics.enable", "true", "boolean"),
    ("socket.request.max.bytes", "104857600", "int"),
    ("log.retention.check.interval.ms", "300000", "long"),
    ("log.cleaner.enable", "true", "boolean"),
    ("log.cleaner.backoff.ms", "15000", "long"),
    ("log.cleaner.dedupe.buffer.size", "134217728", "long"),
    (
        "log.flush.scheduler.interval.ms",
        "9223372036854775807",
        "long",
    ),
    ("num.recovery.threads.per.data.dir", "2", "int"),
    // Group coordinator (moldau-coordinator::GroupConfig) and `__consumer_offsets`.
    ("group.initial.rebalance.delay.ms", "3000", "int"),
    ("group.min.session.timeout.ms", "6000", "int"),
    ("group.max.session.timeout.ms", "1800000", "int"),
    ("group.max.size", "2147483647", "int"),
    ("group.consumer.session.timeout.ms", "45000", "int"),
    ("group.consumer.heartbeat.interval.ms", "5000", "int"),
    ("offsets.topic.num.partitions", "50", "int"),
    ("offsets.topic.segment.bytes", "104857600", "int"),
    // Default: min(3, voters); see `ServerConfig::effective_offsets_topic_replication_factor`.
    ("offsets.topic.replication.factor", "", "short"),
    ("offsets.retention.minutes", "10080", "int"),
    ("offsets.retention.check.interval.ms", "600000", "long"),
    ("offset.metadata.max.bytes", "4096", "int"),
    // Transaction coordinator and `__transaction_state`.
    ("transaction.state.log.num.partitions", "50", "int"),
    ("transaction.state.log.segment.bytes", "104857600", "int"),
    // Defaults: min(3, voters) and min(2, that replication factor).
    ("transaction.state.log.replication.factor", "", "short"),
    ("transaction.state.log.min.isr", "", "int"),
    ("transaction.max.timeout.ms", "900000", "int"),
    ("transactional.id.expiration.ms", "604800000", "int"),
    (
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "10000",
        "int",
    ),
    // Broker-only aliases of topic defaults; Kafka resolves ms > minutes > hours.
    ("log.roll.hours", "168", "int"),
    ("log.roll.jitter.hours", "0", "int"),
    ("log.retention.hours", "168", "int"),
    ("log.retention.minutes", "", "int"),
    // Connections and request memory (`ConnectionConfig`).
    ("max.connections", "2147483647", "int"),
    ("max.connections.per.ip", "2147483647", "int"),
    ("max.connections.per.ip.overrides", "", "string"),
    ("max.connection.creation.rate", "2147483647", "int"),
    ("connections.max.idle.ms", "600000", "long"),
    ("queued.max.request.bytes", "-1", "long"),
    // Client quotas (`quota_manager`): the samples their rates are measured over.
    ("quota.window.num", "11", "int"),
    ("quota.window.size.seconds", "1", "int"),
];

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub node_id: i32,
    pub process_roles: Vec<String>,
    pub listeners: Vec<Endpoint>,
    /// What this node registers (a broker: its non-controller advertised listeners; a
    /// controller-only node: its controller listeners, never registered).
    pub advertised_listeners: Vec<Endpoint>,
    /// `inter.broker.listener.name` (upper case): the listener of other brokers this node
    /// replicates from, sends markers and forwarded requests to, and (as the active
    /// controller) reaches observers on.
    pub inter_broker_listener_name: String,
    /// The security of every listener this node binds or connects to (bound listeners,
    /// controller listeners, the inter-broker listener), by upper-case name.
    pub listener_security: BTreeMap<String, ListenerSecurity>,
    /// `authorizer.class.name=...StandardAuthorizer` with `super.users` and
    /// `allow.everyone.if.no.acl.found`; `None`: no authorizer (everything allowed).
    pub authorizer: Option<moldau_security::acl::AuthorizerSettings>,
    pub log_dir: PathBuf,
    pub metadata_log_dir: PathBuf,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    pub socket_request_max_bytes: i32,
    pub log_retention_check_interval_ms: i64,
    pub log_cleaner_enable: bool,
    pub log_cleaner_backoff_ms: i64,
    pub log_cleaner_dedupe_buffer_size: i64,
    pub log_flush_scheduler_interval_ms: i64,
    pub num_recovery_threads_per_data_dir: i32,
    /// `group.*` and `offsets.retention.*` settings of the group coordinator.
    pub group: moldau_coordinator::GroupConfig,
    pub offsets_topic_num_partitions: i32,
    pub offsets_topic_segment_bytes: i32,
    /// `offsets.topic.replication.factor` as set; unset, the default depends on the voters
    /// ([`ServerConfig::effective_offsets_topic_replication_factor`]).
    pub offsets_topic_replication_factor: Option<i16>,
    /// `transaction.*` settings of the transaction coordinator.
    pub txn: moldau_coordinator::txn::TxnConfig,
    pub transaction_state_log_num_partitions: i32,
    pub transaction_state_log_segment_bytes: i32,
    /// `transaction.state.log.replication.factor` and `transaction.state.log.min.isr` as
    /// set; see [`ServerConfig::effective_transaction_state_log_replication_factor`].
    pub transaction_state_log_replication_factor: Option<i16>,
    pub transaction_state_log_min_isr: Option<i32>,
    pub transaction_abort_timed_out_transaction_cleanup_interval_ms: u64,
    /// Broker-level defaults for every topic config (`log.segment.bytes` -> `segment.bytes`, ...).
    pub log_defaults: LogConfig,
    /// Every key the operator set, as given: DescribeConfigs reports these as STATIC_BROKER_CONFIG.
    pub static_configs: BTreeMap<String, String>,
    /// Connection limits and the request memory budget.
    pub connections: ConnectionConfig,
    /// `broker.rack`, reported in Metadata and DescribeCluster.
    pub broker_rack: Option<String>,
    /// `controller.quorum.voters` as (node id, host, port); empty means this node alone,
    /// or a dynamic quorum when bootstrap servers are set.
    pub controller_quorum_voters: Vec<QuorumVoter>,
    /// `controller.quorum.bootstrap.servers` (KIP-853) as (host, port): where a node of a
    /// dynamic quorum (no `controller.quorum.voters`) finds the controllers.
    pub controller_quorum_bootstrap_servers: Vec<(String, u16)>,
    /// `controller.listener.names`: listeners that carry the quorum's traffic, never
    /// advertised to clients.
    pub controller_listener_names: Vec<String>,
    pub controller_quorum_election_timeout_ms: u64,
    pub controller_quorum_fetch_timeout_ms: u64,
    /// `metadata.log.max.record.bytes.between.snapshots`: record bytes applied before the
    /// metadata image is snapshotted (and the log behind it purged).
    pub metadata_log_max_record_bytes_between_snapshots: u64,
    /// `metadata.log.max.snapshot.interval.ms`: the longest a snapshot waits once records
    /// were applied; 0 turns the time rule off.
    pub metadata_log_max_snapshot_interval_ms: u64,
    /// How often a broker heartbeats to the active controller.
    pub broker_heartbeat_interval_ms: u64,
    /// A broker with no heartbeat for this long is fenced.
    pub broker_session_timeout_ms: u64,
    /// `replica.*` and `num.replica.fetchers`: followers' fetching and the ISR.
    pub replication: ReplicationConfig,
    /// `unclean.leader.election.enable`: the default of topics without their own value
    /// (on the active controller, after the dynamic broker configs).
    pub unclean_leader_election_enable: bool,
    /// `auto.leader.rebalance.enable`: the active controller moves leadership back to
    /// preferred replicas every `leader.imbalance.check.interval.seconds`.
    pub auto_leader_rebalance_enable: bool,
    pub leader_imbalance_check_interval_seconds: u64,
    /// `leader.imbalance.per.broker.percentage`: a broker's partitions are rebalanced once
    /// more than this share of those it is the preferred leader of are led elsewhere.
    pub leader_imbalance_per_broker_percentage: i32,
    /// `quota.window.num` and `quota.window.size.seconds`: client quotas' rates are
    /// measured over this many samples of this many seconds (Kafka's 11 of 1 s).
    pub quota_window_num: u32,
    pub quota_window_size_seconds: u32,
}

/// How followers fetch from leaders and when a leader drops a follower from the ISR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// A follower that has not caught up with the leader's log end for this long leaves
    /// the ISR.
    pub replica_lag_time_max_ms: u64,
    /// Bytes a follower asks for per partition (a first batch may exceed it).
    pub replica_fetch_max_bytes: i32,
    pub replica_fetch_min_bytes: i32,
    /// How long a follower's fetch waits at the leader for new data.
    pub replica_fetch_wait_max_ms: i32,
    /// Bytes a follower asks for per fetch, over all partitions.
    pub replica_fetch_response_max_bytes: i32,
    /// Pause after a failed fetch (leader unreachable, partition error).
    pub replica_fetch_backoff_ms: u64,
    /// How long a follower waits for a fetch's answer before it gives the connection up.
    pub replica_socket_timeout_ms: u64,
    /// Fetcher tasks per source broker; a partition always goes to the same one.
    pub num_replica_fetchers: usize,
    /// `replica.selector.class` is Kafka's RackAwareReplicaSelector (KIP-392): a consumer
    /// that names its rack is sent to an in-sync replica in that rack.
    pub rack_aware_replica_selector: bool,
}

/// The one `replica.selector.class` Kafka ships besides the leader-only default.
pub const RACK_AWARE_REPLICA_SELECTOR: &str =
    "org.apache.kafka.common.replica.RackAwareReplicaSelector";

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            replica_lag_time_max_ms: 30_000,
            replica_fetch_max_bytes: 1_048_576,
            replica_fetch_min_bytes: 1,
            replica_fetch_wait_max_ms: 500,
            replica_fetch_response_max_bytes: 10_485_760,
            replica_fetch_backoff_ms: 1_000,
            replica_socket_timeout_ms: 30_000,
            num_replica_fetchers: 1,
            rack_aware_replica_selector: false,
        }
    }
}

impl ReplicationConfig {
    /// Parses the keys with Kafka's bounds and cross-checks: a fetch must not wait longer
    /// than the socket timeout nor than the lag that drops a follower from the ISR.
    fn parse(props: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let d = ReplicationConfig::default();
        let config = ReplicationConfig {
            replica_lag_time_max_ms: parse_opt(
                props,
                "replica.lag.time.max.ms",
                d.replica_lag_time_max_ms,
                1,
                i64::MAX as u64,
            )?,
            replica_fetch_max_bytes: parse_opt(
                props,
                "replica.fetch.max.bytes",
                d.replica_fetch_max_bytes,
                0,
                i32::MAX,
            )?,
            replica_fetch_min_bytes: parse_opt(
                props,
                "replica.fetch.min.bytes",
                d.replica_fetch_min_bytes,
                0,
                i32::MAX,
            )?,
            replica_fetch_wait_max_ms: parse_opt(
                props,
                "replica.fetch.wait.max.ms",
                d.replica_fetch_wait_max_ms,
                0,
                i32::MAX,
            )?,
            replica_fetch_response_max_bytes: parse_opt(
                props,
                "replica.fetch.response.max.bytes",
                d.replica_fetch_response_max_bytes,
                0,
                i32::MAX,
            )?,
            replica_fetch_backoff_ms: parse_opt(
                props,
                "replica.fetch.backoff.ms",
                d.replica_fetch_backoff_ms,
                0,
                i32::MAX as u64,
            )?,
            replica_socket_timeout_ms: parse_opt(
                props,
                "replica.socket.timeout.ms",
                d.replica_socket_timeout_ms,
                1,
                i32::MAX as u64,
            )?,
            num_replica_fetchers: parse_opt(props, "num.replica.fetchers", 1, 1, 1024)?,
            rack_aware_replica_selector: match props.get("replica.selector.class").map(|v| v.trim())
            {
                None | Some("") => false,
                Some(RACK_AWARE_REPLICA_SELECTOR) => true,
                // Fail closed: a selector class is code Moldau cannot load.
                Some(other) => {
                    return Err(ConfigError::invalid(
                        "replica.selector.class",
                        other,
                        format!("the only selector available is {RACK_AWARE_REPLICA_SELECTOR}"),
                    ))
                }
            },
        };
        let wait_ms = config.replica_fetch_wait_max_ms as u64;
        if wait_ms > config.replica_socket_timeout_ms {
            return Err(ConfigError::invalid(
                "replica.fetch.wait.max.ms",
                &wait_ms.to_string(),
                "must be at most replica.socket.timeout.ms",
            ));
        }
        if wait_ms > config.replica_lag_time_max_ms {
            return Err(ConfigError::invalid(
                "replica.fetch.wait.max.ms",
                &wait_ms.to_string(),
                "must be at most replica.lag.time.max.ms, or followers leave the ISR while they wait",
            ));
        }
        Ok(config)
    }
}

/// One entry of `controller.quorum.voters` (`{id}@{host}:{port}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumVoter {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
}

/// Parses `controller.quorum.bootstrap.servers`: `host:port` entries (`[v6]:port`).
fn bootstrap_servers(value: Option<&str>) -> Result<Vec<(String, u16)>, ConfigError> {
    const KEY: &str = "controller.quorum.bootstrap.servers";
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let bad = || ConfigError::invalid(KEY, value, format!("{entry}: expected host:port"));
            let (host, port) = entry.rsplit_once(':').ok_or_else(bad)?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(bad)?;
            if host.is_empty() {
                return Err(bad());
            }
            Ok((host.to_string(), port))
        })
        .collect()
}

/// Parses `controller.quorum.voters` as Kafka does and checks it against this node: a
/// controller must be one of the voters, and a controller reaches the voters beyond
/// itself through a controller listener, so one must be named (a broker-only node's rules
/// are in [`check_process_roles`]).
fn quorum_voters(
    value: Option<&str>,
    node_id: i32,
    is_controller: bool,
    controller_listener_names: &[String],
) -> Result<Vec<QuorumVoter>, ConfigError> {
    const KEY: &str = "controller.quorum.voters";
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let mut voters: Vec<QuorumVoter> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = |why: &str| ConfigError::invalid(KEY, value, format!("{entry}: {why}"));
        let (id, address) = entry
            .split_once('@')
            .ok_or_else(|| bad("expected {id}@{host}:{port}"))?;
        let node_id: i32 = id
            .trim()
            .parse()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| bad("the id is not a non-negative integer"))?;
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| bad("expected {id}@{host}:{port}"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("the port is not a number from 1 to 65535"))?;
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        if voters.iter().any(|v| v.node_id == node_id) {
            return Err(bad("the id is listed twice"));
        }
        voters.push(QuorumVoter {
            node_id,
            host: host.to_string(),
            port,
        });
    }
    if is_controller && !voters.iter().any(|v| v.node_id == node_id) {
        return Err(ConfigError::invalid(
            KEY,
            value,
            format!("this node (node.id {node_id}) has the controller role but is not a voter"),
        ));
    }
    if is_controller
        && voters.iter().any(|v| v.node_id != node_id)
        && controller_listener_names.is_empty()
    {
        return Err(ConfigError::invalid(
            KEY,
            value,
            "voters other than this node are reached through the controller listener: set \
             controller.listener.names to a listener in listeners",
        ));
    }
    Ok(voters)
}

impl ServerConfig {
    /// Reads the properties file (if any), applies overrides, validates. Returns the config and
    /// one warning per unknown key.
    pub fn load(
        path: Option<&Path>,
        overrides: &[(String, String)],
    ) -> Result<(ServerConfig, Vec<String>), ConfigError> {
        let mut props = BTreeMap::new();
        if let Some(path) = path {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            props = parse_properties(path, &text)?;
        }
        for (k, v) in overrides {
            props.insert(k.trim().to_string(), v.trim().to_string());
        }
        Self::from_properties(props)
    }

    pub fn from_properties(
        props: BTreeMap<String, String>,
    ) -> Result<(ServerConfig, Vec<String>), ConfigError> {
        let warnings: Vec<String> = props
            .keys()
            .filter(|k| !is_known_key(k))
            .map(|k| format!("unknown config key {k} is ignored"))
            .collect();
        let get = |key: &str| props.get(key).map(String::as_str);

        let node_id = match get("node.id").or(get("broker.id")) {
            Some(v) => parse_int::<i32>("node.id", v, 0, i32::MAX)?,
            None => 1,
        };
        let process_roles = parse_process_roles(get("process.roles"))?;
        let is_broker = process_roles.iter().any(|r| r == BROKER_ROLE);
        let is_controller = process_roles.iter().any(|r| r == CONTROLLER_ROLE);
        let listeners_value = get("listeners").unwrap_or("PLAINTEXT://127.0.0.1:9092");
        let listeners = Endpoint::parse_list("listeners", listeners_value)?;
        let listeners_for_validation = listeners.clone();
        let controller_listener_names: Vec<String> = get("controller.listener.names")
            .unwrap_or("")
            .split(',')
            .map(|s| s.trim().to_ascii_uppercase())
            .filter(|s| !s.is_empty())
            .collect();
        let advertised_all = match get("advertised.listeners") {
            Some(v) if !v.is_empty() => Endpoint::parse_list("advertised.listeners", v)?,
            _ => listeners.clone(),
        };
        let is_controller_listener = |e: &Endpoint| {
            controller_listener_names.contains(&e.listener_name.to_ascii_uppercase())
        };
        // Clients are never sent to a controller listener (Kafka's brokers do not
        // advertise them either). A controller-only node serves no client: its endpoint
        // is its controller listener, and it never registers as a broker.
        let advertised_listeners: Vec<Endpoint> = if is_broker {
            let brokers: Vec<Endpoint> = advertised_all
                .iter()
                .filter(|e| !is_controller_listener(e))
                .cloned()
                .collect();
            if brokers.is_empty() {
                return Err(ConfigError::invalid(
                    "listeners",
                    listeners_value,
                    "every listener is a controller listener: clients need one that is not \
                     (there must be at least one broker advertised listener)",
                ));
            }
            brokers
        } else {
            let controllers: Vec<Endpoint> = advertised_all
                .iter()
                .filter(|e| is_controller_listener(e))
                .cloned()
                .collect();
            if controllers.is_empty() {
                listeners.clone()
            } else {
                controllers
            }
        };
        if let Some(meta) = advertised_listeners
            .iter()
            .find(|e| e.host == "0.0.0.0" || e.host == "::")
        {
            return Err(ConfigError::invalid(
                "advertised.listeners",
                get("advertised.listeners").unwrap_or(listeners_value),
                format!(
                    "cannot use the nonroutable meta-address {}; use a routable IP address or \
                     host name (or leave the host empty to advertise this machine's host name)",
                    meta.host
                ),
            ));
        }
        let protocols = check_listener_protocols(&props, &listeners, &advertised_listeners)?;
        let controller_quorum_voters = quorum_voters(
            get("controller.quorum.voters"),
            node_id,
            is_controller,
            &controller_listener_names,
        )?;
        let controller_quorum_bootstrap_servers =
            bootstrap_servers(get("controller.quorum.bootstrap.servers"))?;
        let mut warnings = warnings;
        check_process_roles(
            &props,
            &process_roles,
            node_id,
            &listeners,
            &controller_listener_names,
            &controller_quorum_voters,
            &mut warnings,
        )?;
        let log_dirs = get("log.dirs").or(get("log.dir")).unwrap_or("./data");
        let dirs: Vec<&str> = log_dirs
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if dirs.len() != 1 {
            return Err(ConfigError::invalid(
                "log.dirs",
                log_dirs,
                "exactly one log directory is supported",
            ));
        }
        let log_dir = PathBuf::from(dirs[0]);
        let metadata_log_dir = match get("metadata.log.dir") {
            Some(v) if !v.is_empty() => PathBuf::from(v),
            _ => log_dir.clone(),
        };

        // After the listeners' own checks (unique names and ports).
        let connections = connection_config(&props, &listeners_for_validation)?;
        let inter_broker_listener_name =
            inter_broker_listener_name(&props, is_broker, &advertised_listeners)?;
        let listener_security = listener_security(
            &props,
            &protocols,
            &listeners,
            &controller_listener_names,
            is_broker.then_some(inter_broker_listener_name.as_str()),
        )?;
        let config = ServerConfig {
            node_id,
            process_roles,
            listeners,
            advertised_listeners,
            inter_broker_listener_name,
            listener_security,
            authorizer: authorizer_settings(&props)?,
            log_dir,
            metadata_log_dir,
            num_partitions: parse_opt(&props, "num.partitions", 1, 1, i32::MAX)?,
            default_replication_factor: parse_opt(
                &props,
                "default.replication.factor",
                1,
                1,
                i16::MAX,
            )?,
            auto_create_topics_enable: parse_bool(&props, "auto.create.topics.enable", true)?,
            socket_request_max_bytes: parse_opt(
                &props,
                "socket.request.max.bytes",
                104_857_600,
                1,
                i32::MAX,
            )?,
            log_retention_check_interval_ms: parse_opt(
                &props,
                "log.retention.check.interval.ms",
                300_000,
                1,
                i64::MAX,
            )?,
            log_cleaner_enable: parse_bool(&props, "log.cleaner.enable", true)?,
            log_cleaner_backoff_ms: parse_opt(
                &props,
                "log.cleaner.backoff.ms",
                15_000,
                0,
                i64::MAX,
            )?,
            log_cleaner_dedupe_buffer_size: parse_opt(
                &props,
                "log.cleaner.dedupe.buffer.size",
                134_217_728,
                1,
                i64::MAX,
            )?,
            log_flush_scheduler_interval_ms: parse_opt(
                &props,
                "log.flush.scheduler.interval.ms",
                i64::MAX,
                0,
                i64::MAX,
            )?,
            num_recovery_threads_per_data_dir: parse_opt(
                &props,
                "num.recovery.threads.per.data.dir",
                2,
                1,
                64,
            )?,
            group: group_config(&props)?,
            offsets_topic_num_partitions: parse_opt(
                &props,
                "offsets.topic.num.partitions",
                50,
                1,
                10_000,
            )?,
            offsets_topic_segment_bytes: parse_opt(
                &props,
                "offsets.topic.segment.bytes",
                104_857_600,
                1,
                i32::MAX,
            )?,
            offsets_topic_replication_factor: parse_set(
                &props,
                "offsets.topic.replication.factor",
                1,
                i16::MAX,
            )?,
            txn: moldau_coordinator::txn::TxnConfig {
                max_timeout_ms: parse_opt(
                    &props,
                    "transaction.max.timeout.ms",
                    900_000,
                    1,
                    i32::MAX,
                )?,
                id_expiration_ms: parse_opt(
                    &props,
                    "transactional.id.expiration.ms",
                    604_800_000,
                    1,
                    i64::from(i32::MAX),
                )?,
            },
            transaction_state_log_num_partitions: parse_opt(
                &props,
                "transaction.state.log.num.partitions",
                50,
                1,
                10_000,
            )?,
            transaction_state_log_segment_bytes: parse_opt(
                &props,
                "transaction.state.log.segment.bytes",
                104_857_600,
                1,
                i32::MAX,
            )?,
            transaction_state_log_replication_factor: parse_set(
                &props,
                "transaction.state.log.replication.factor",
                1,
                i16::MAX,
            )?,
            transaction_state_log_min_isr: parse_set(
                &props,
                "transaction.state.log.min.isr",
                1,
                i32::MAX,
            )?,
            transaction_abort_timed_out_transaction_cleanup_interval_ms: parse_opt(
                &props,
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                10_000,
                1,
                i32::MAX as u64,
            )?,
            log_defaults: log_defaults(&props)?,
            connections,
            broker_rack: get("broker.rack")
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_string),
            controller_quorum_voters,
            controller_quorum_bootstrap_servers,
            controller_quorum_election_timeout_ms: parse_opt(
                &props,
                "controller.quorum.election.timeout.ms",
                1000,
                1,
                i32::MAX as u64,
            )?,
            controller_quorum_fetch_timeout_ms: parse_opt(
                &props,
                "controller.quorum.fetch.timeout.ms",
                2000,
                1,
                i32::MAX as u64,
            )?,
            metadata_log_max_record_bytes_between_snapshots: parse_opt(
                &props,
                "metadata.log.max.record.bytes.between.snapshots",
                20 * 1024 * 1024,
                1,
                i64::MAX as u64,
            )?,
            metadata_log_max_snapshot_interval_ms: parse_opt(
                &props,
                "metadata.log.max.snapshot.interval.ms",
                3_600_000,
                0,
                i64::MAX as u64,
            )?,
            controller_listener_names,
            broker_heartbeat_interval_ms: parse_opt(
                &props,
                "broker.heartbeat.interval.ms",
                2000,
                1,
                i32::MAX as u64,
            )?,
            broker_session_timeout_ms: parse_opt(
                &props,
                "broker.session.timeout.ms",
                9000,
                1,
                i32::MAX as u64,
            )?,
            replication: ReplicationConfig::parse(&props)?,
            unclean_leader_election_enable: parse_bool(
                &props,
                "unclean.leader.election.enable",
                false,
            )?,
            auto_leader_rebalance_enable: parse_bool(&props, "auto.leader.rebalance.enable", true)?,
            // Kafka: a long of at least 1; the percentage is an int without bounds.
            leader_imbalance_check_interval_seconds: parse_opt(
                &props,
                "leader.imbalance.check.interval.seconds",
                300,
                1,
                i64::MAX as u64,
            )?,
            leader_imbalance_per_broker_percentage: parse_opt(
                &props,
                "leader.imbalance.per.broker.percentage",
                10,
                i32::MIN,
                i32::MAX,
            )?,
            quota_window_num: parse_opt(&props, "quota.window.num", 11, 1, i32::MAX as u32)?,
            quota_window_size_seconds: parse_opt(
                &props,
                "quota.window.size.seconds",
                1,
                1,
                i32::MAX as u32,
            )?,
            static_configs: props,
        };
        Ok((config, warnings))
    }

    /// The replication factor of `__consumer_offsets`: as set, else Kafka's 3 capped by the
    /// number of voters (at least 1), so that a zero-config node and a three-node cluster
    /// both work without setting it. Kafka's creation of the topic waits (fails, and
    /// clients retry) while fewer brokers are unfenced; so does Moldau's.
    pub fn effective_offsets_topic_replication_factor(&self) -> i16 {
        self.offsets_topic_replication_factor
            .unwrap_or_else(|| self.voters_capped(3))
    }

    /// The replication factor of `__transaction_state`: as set, else Kafka's 3 capped by
    /// the number of voters (as [`Self::effective_offsets_topic_replication_factor`]).
    pub fn effective_transaction_state_log_replication_factor(&self) -> i16 {
        self.transaction_state_log_replication_factor
            .unwrap_or_else(|| self.voters_capped(3))
    }

    /// `min.insync.replicas` of `__transaction_state`: as set, else Kafka's 2 capped by
    /// that topic's replication factor.
    pub fn effective_transaction_state_log_min_isr(&self) -> i32 {
        self.transaction_state_log_min_isr.unwrap_or_else(|| {
            2.min(i32::from(
                self.effective_transaction_state_log_replication_factor(),
            ))
        })
    }

    /// `kafka_default`, or fewer when the quorum has fewer voters (an empty
    /// `controller.quorum.voters` is this node alone).
    fn voters_capped(&self, kafka_default: i16) -> i16 {
        let voters = i16::try_from(self.controller_quorum_voters.len()).unwrap_or(i16::MAX);
        kafka_default.min(voters.max(1))
    }

    /// Effective values of keys whose default is derived from other settings.
    fn derived_default(&self, key: &str) -> Option<String> {
        match key {
            "offsets.topic.replication.factor" => Some(
                self.effective_offsets_topic_replication_factor()
                    .to_string(),
            ),
            "transaction.state.log.replication.factor" => Some(
                self.effective_transaction_state_log_replication_factor()
                    .to_string(),
            ),
            "transaction.state.log.min.isr" => {
                Some(self.effective_transaction_state_log_min_isr().to_string())
            }
            _ => None,
        }
    }

    /// The endpoint clients are told to connect to (a controller-only node: its
    /// controller listener, which it never advertises to clients).
    pub fn advertised(&self) -> &Endpoint {
        &self.advertised_listeners[0]
    }

    /// This node's controller endpoint: the first of `controller.listener.names`, as
    /// advertised (else as bound). What a dynamic quorum's voter is reached at.
    pub fn controller_endpoint(&self) -> Option<&Endpoint> {
        let name = self.controller_listener_names.first()?;
        self.advertised_listeners
            .iter()
            .chain(&self.listeners)
            .find(|l| l.listener_name.eq_ignore_ascii_case(name))
    }

    /// A dynamic quorum (KIP-853): no `controller.quorum.voters`, bootstrap servers set.
    pub fn is_dynamic_quorum(&self) -> bool {
        self.controller_quorum_voters.is_empty()
            && !self.controller_quorum_bootstrap_servers.is_empty()
    }

    /// The security protocol of listener `name` (PLAINTEXT if this node does not know it).
    pub fn security_protocol(&self, name: &str) -> SecurityProtocol {
        self.listener_security
            .get(&name.to_ascii_uppercase())
            .map_or(SecurityProtocol::Plaintext, |s| s.protocol)
    }

    /// `process.roles` has `broker`: the node registers, hosts replicas, serves clients.
    pub fn is_broker(&self) -> bool {
        self.process_roles.iter().any(|r| r == BROKER_ROLE)
    }

    /// `process.roles` has `controller`: the node is a voter of the metadata quorum.
    pub fn is_controller(&self) -> bool {
        self.process_roles.iter().any(|r| r == CONTROLLER_ROLE)
    }

    /// Every broker-level key with its effective value, for DescribeConfigs on a broker:
    /// (name, value, set_by_operator).
    pub fn describe(&self) -> Vec<(String, Option<String>, bool)> {
        let mut out = Vec::new();
        for (key, default, _) in BROKER_KEYS {
            let set = self.static_configs.get(*key);
            let value = set
                .cloned()
                .or_else(|| self.derived_default(key))
                .or_else(|| (!default.is_empty()).then(|| default.to_string()));
            out.push((key.to_string(), value, set.is_some()));
        }
        for def in TOPIC_CONFIGS {
            let set = self.static_configs.get(def.broker_synonym);
            let value = set.cloned().or_else(|| self.log_defaults.get(def.name));
            out.push((def.broker_synonym.to_string(), value, set.is_some()));
        }
        out.sort();
        out.dedup_by(|a, b| a.0 == b.0);
        out
    }

    /// Type name of a broker key as Kafka's DescribeConfigs reports it.
    pub fn config_type(key: &str) -> Option<&'static str> {
        BROKER_KEYS
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, t)| *t)
            .or_else(|| {
                TOPIC_CONFIGS
                    .iter()
                    .find(|d| d.broker_synonym == key)
                    .map(|d| d.config_type)
            })
    }
}

/// `inter.broker.listener.name`, or as Kafka derives it when unset: the listener named
/// after `security.inter.broker.protocol` (PLAINTEXT, the only protocol served yet). A
/// broker must advertise it; the two keys exclude each other.
fn inter_broker_listener_name(
    props: &BTreeMap<String, String>,
    is_broker: bool,
    advertised_listeners: &[Endpoint],
) -> Result<String, ConfigError> {
    const KEY: &str = "inter.broker.listener.name";
    const PROTOCOL_KEY: &str = "security.inter.broker.protocol";
    let set = |key: &str| props.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
    let name = match (set(KEY), set(PROTOCOL_KEY)) {
        (Some(name), Some(_)) => {
            return Err(ConfigError::invalid(
                KEY,
                name,
                format!("only one of {KEY} and {PROTOCOL_KEY} should be set"),
            ))
        }
        (Some(name), None) => name.to_ascii_uppercase(),
        (None, Some(protocol)) => protocol.to_ascii_uppercase(),
        (None, None) => "PLAINTEXT".to_string(),
    };
    if is_broker
        && !advertised_listeners
            .iter()
            .any(|e| e.listener_name.eq_ignore_ascii_case(&name))
    {
        let valid: Vec<&str> = advertised_listeners
            .iter()
            .map(|e| e.listener_name.as_str())
            .collect();
        return Err(ConfigError::invalid(
            KEY,
            &name,
            format!(
                "must be a listener name defined in advertised.listeners (a broker listener, \
                 not a controller listener). The valid options based on currently \
                 configured listeners are {}",
                valid.join(",")
            ),
        ));
    }
    Ok(name)
}

/// Broker keys of Kafka's security model that Moldau does not act on yet (the authorizer,
/// principal builders, delegation tokens, Kerberos, OAUTHBEARER, Java login and callback
/// classes, and per-listener overrides of these): setting one is a startup error rather
/// than a warning, so an operator who asked for ACLs never gets an open broker. `ssl.*`
/// keys are read by [`listener_security`], the SASL keys Moldau serves by
/// [`crate::sasl::SaslListenerConfig`].
fn is_unsupported_security_key(key: &str) -> bool {
    const PREFIXES: &[&str] = &["sasl.", "delegation.token."];
    const KEYS: &[&str] = &["principal.builder.class", "security.providers"];
    if is_sasl_key(key).is_some() {
        return false;
    }
    if PREFIXES.iter().any(|p| key.starts_with(p)) || KEYS.contains(&key) {
        return true;
    }
    // listener.name.<listener>.<setting>: sasl.* settings, and settings of one mechanism
    // (listener.name.<l>.<mechanism>.sasl.login.class and similar).
    key.strip_prefix("listener.name.")
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(_, setting)| {
            is_unsupported_security_key(setting)
                || setting
                    .split_once('.')
                    .is_some_and(|(_, per_mechanism)| per_mechanism.starts_with("sasl."))
        })
}

/// The SASL keys Moldau reads: `Some(None)` for a bare key, `Some(Some(listener))` for one
/// of a listener (lower case).
fn is_sasl_key(key: &str) -> Option<Option<&str>> {
    const BARE: &[&str] = &[
        "sasl.enabled.mechanisms",
        "sasl.mechanism.inter.broker.protocol",
        "sasl.mechanism.controller.protocol",
        "sasl.server.max.receive.size",
        "connections.max.reauth.ms",
    ];
    use moldau_security::oauthbearer::{SASL_SERVER_CALLBACK_HANDLER_CLASS, SERVER_CONFIG_KEYS};
    // OAUTHBEARER's validation settings (the handler class only per mechanism).
    let oauth =
        |k: &str| SERVER_CONFIG_KEYS.contains(&k) && k != SASL_SERVER_CALLBACK_HANDLER_CLASS;
    if BARE.contains(&key) || oauth(key) {
        return Some(None);
    }
    let (listener, setting) = key.strip_prefix("listener.name.")?.split_once('.')?;
    if matches!(
        setting,
        "sasl.enabled.mechanisms" | "connections.max.reauth.ms"
    ) || oauth(setting)
    {
        return Some(Some(listener));
    }
    let (mechanism, per_mechanism) = setting.split_once('.')?;
    let mechanism = crate::sasl::SaslMechanism::parse(&mechanism.to_ascii_uppercase());
    let per_mechanism_ok = matches!(
        per_mechanism,
        "sasl.jaas.config" | "connections.max.reauth.ms"
    ) || (mechanism == Some(crate::sasl::SaslMechanism::OAuthBearer)
        && SERVER_CONFIG_KEYS.contains(&per_mechanism));
    (mechanism.is_some() && per_mechanism_ok).then_some(Some(listener))
}

/// Values that ask for nothing Moldau lacks (none left: every key above is refused).
fn is_security_off(_key: &str, _value: &str) -> bool {
    false
}

/// `authorizer.class.name` (StandardAuthorizer or empty), `super.users`,
/// `allow.everyone.if.no.acl.found`: the authorizer's settings, or `None` without one. The
/// last two without an authorizer would do nothing: an error naming them.
fn authorizer_settings(
    props: &BTreeMap<String, String>,
) -> Result<Option<moldau_security::acl::AuthorizerSettings>, ConfigError> {
    const CLASS: &str = "authorizer.class.name";
    let class = props.get(CLASS).map(|v| v.trim()).unwrap_or("");
    let super_users = props.get("super.users").map(String::as_str);
    let allow_everyone = props
        .get("allow.everyone.if.no.acl.found")
        .map(String::as_str);
    if class.is_empty() {
        for (key, value) in [
            ("super.users", super_users),
            ("allow.everyone.if.no.acl.found", allow_everyone),
        ] {
            if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
                return Err(ConfigError::invalid(
                    key,
                    value,
                    format!(
                        "has no effect without an authorizer: set {CLASS}={}",
                        crate::authorizer::STANDARD_AUTHORIZER
                    ),
                ));
            }
        }
        return Ok(None);
    }
    if class != crate::authorizer::STANDARD_AUTHORIZER {
        return Err(ConfigError::invalid(
            CLASS,
            class,
            format!(
                "Moldau's authorizer is {} (kafka.security.authorizer.AclAuthorizer needs \
                 ZooKeeper; custom classes cannot be loaded)",
                crate::authorizer::STANDARD_AUTHORIZER
            ),
        ));
    }
    if let Some(value) = allow_everyone {
        if !matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "false") {
            return Err(ConfigError::invalid(
                "allow.everyone.if.no.acl.found",
                value,
                "expected true or false",
            ));
        }
    }
    moldau_security::acl::AuthorizerSettings::from_configs(super_users, allow_everyone)
        .map(Some)
        .map_err(|e| ConfigError::invalid("super.users", super_users.unwrap_or(""), e.to_string()))
}

/// `ssl.*` keys, bare or per listener (`listener.name.<l>.ssl.*`): the listener (lower
/// case) they belong to, `None` for a bare key.
fn ssl_key_listener(key: &str) -> Option<Option<&str>> {
    if key.starts_with("ssl.") {
        return Some(None);
    }
    let (listener, setting) = key.strip_prefix("listener.name.")?.split_once('.')?;
    setting.starts_with("ssl.").then_some(Some(listener))
}

/// Keys whose values are secrets: never printed in errors, logs or DescribeConfigs (Kafka's
/// PASSWORD-typed configs, per listener too).
pub fn is_sensitive_key(key: &str) -> bool {
    const SENSITIVE: &[&str] = &[
        "ssl.keystore.password",
        "ssl.key.password",
        "ssl.truststore.password",
        "ssl.keystore.key",
        "ssl.keystore.certificate.chain",
        "ssl.truststore.certificates",
        "sasl.jaas.config",
        "sasl.oauthbearer.client.credentials.client.secret",
    ];
    SENSITIVE
        .iter()
        .any(|s| key == *s || key.ends_with(&format!(".{s}")))
}

fn shown_value(key: &str, value: &str) -> String {
    if is_sensitive_key(key) {
        "[hidden]".to_string()
    } else {
        value.to_string()
    }
}

/// Parses `listener.security.protocol.map` as Kafka does (`NAME:PROTOCOL,...`, names
/// case-insensitive; unset, each protocol's own name) and checks that every listener and
/// controller listener maps to a protocol. SASL is refused until Moldau serves it.
fn check_listener_protocols(
    props: &BTreeMap<String, String>,
    listeners: &[Endpoint],
    advertised_listeners: &[Endpoint],
) -> Result<BTreeMap<String, SecurityProtocol>, ConfigError> {
    const MAP_KEY: &str = "listener.security.protocol.map";
    const CONTROLLER_KEY: &str = "controller.listener.names";
    if let Some((key, value)) = props
        .iter()
        .find(|(k, v)| is_unsupported_security_key(k) && !is_security_off(k, v))
    {
        return Err(ConfigError::invalid(
            key,
            &shown_value(key, value),
            "not supported (Moldau serves TLS and SASL PLAIN and SCRAM; authorizers, principal \
             builders, Kerberos, OAUTHBEARER, delegation tokens and Java login or callback \
             classes are not yet supported); remove the key",
        ));
    }
    let explicit_map = props.get(MAP_KEY).filter(|v| !v.trim().is_empty());
    let mut map: BTreeMap<String, SecurityProtocol> = BTreeMap::new();
    match explicit_map {
        Some(value) => {
            for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (name, protocol) = item
                    .split_once(':')
                    .map(|(n, p)| (n.trim(), p.trim()))
                    .filter(|(n, p)| !n.is_empty() && !p.is_empty())
                    .ok_or_else(|| {
                        ConfigError::invalid(MAP_KEY, value, "expected NAME:PROTOCOL pairs")
                    })?;
                let Some(protocol) = SecurityProtocol::parse(protocol) else {
                    let known: Vec<&str> = SecurityProtocol::ALL.iter().map(|p| p.name()).collect();
                    return Err(ConfigError::invalid(
                        MAP_KEY,
                        value,
                        format!(
                            "unknown security protocol {} (known: {})",
                            protocol.to_ascii_uppercase(),
                            known.join(", ")
                        ),
                    ));
                };
                if map.insert(name.to_ascii_uppercase(), protocol).is_some() {
                    return Err(ConfigError::invalid(
                        MAP_KEY,
                        value,
                        format!("listener {name} is mapped twice"),
                    ));
                }
            }
        }
        None => {
            for protocol in SecurityProtocol::ALL {
                map.insert(protocol.name().to_string(), protocol);
            }
        }
    }
    let controller_names: Vec<&str> = props
        .get(CONTROLLER_KEY)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    for name in &controller_names {
        let upper = name.to_ascii_uppercase();
        if map.contains_key(&upper) {
            continue;
        }
        // As Kafka: without an explicit map, a controller listener defaults to PLAINTEXT.
        if explicit_map.is_some() {
            return Err(ConfigError::invalid(
                CONTROLLER_KEY,
                &props[CONTROLLER_KEY],
                format!("controller listener {name} is not in {MAP_KEY}"),
            ));
        }
        map.insert(upper, SecurityProtocol::Plaintext);
    }
    let endpoints = [
        ("listeners", listeners),
        ("advertised.listeners", advertised_listeners),
    ];
    for (key, endpoints) in endpoints {
        for endpoint in endpoints {
            let name = endpoint.listener_name.to_ascii_uppercase();
            let value = props.get(key).map_or("", String::as_str);
            if !map.contains_key(&name) {
                return Err(ConfigError::invalid(
                    key,
                    value,
                    format!("no security protocol defined for listener {name} in {MAP_KEY}"),
                ));
            }
        }
    }
    Ok(map)
}

/// The mechanism this node uses on a SASL listener of its peers (`key` is
/// `sasl.mechanism.inter.broker.protocol` or `sasl.mechanism.controller.protocol`, Kafka's
/// default GSSAPI): enabled on that listener, with this node's credentials in its JAAS
/// entry.
fn client_mechanism(
    props: &BTreeMap<String, String>,
    key: &str,
    listener: &str,
    sasl: &crate::sasl::SaslListenerConfig,
) -> Result<crate::sasl::SaslMechanism, ConfigError> {
    let value = props.get(key).map_or("GSSAPI", |v| v.trim());
    let Some(mechanism) = crate::sasl::SaslMechanism::parse(value) else {
        return Err(ConfigError::invalid(
            key,
            value,
            format!(
                "listener {listener} uses SASL: set {key} to PLAIN, SCRAM-SHA-256 or \
                 SCRAM-SHA-512 (GSSAPI, Kafka's default, needs Kerberos)"
            ),
        ));
    };
    if mechanism == crate::sasl::SaslMechanism::OAuthBearer {
        return Err(ConfigError::invalid(
            key,
            value,
            "OAUTHBEARER is not supported between nodes (no token endpoint client): use PLAIN \
             or SCRAM",
        ));
    }
    if !sasl.enabled_mechanisms.contains(&mechanism) {
        return Err(ConfigError::invalid(
            key,
            value,
            format!("{value} must be in sasl.enabled.mechanisms of listener {listener}"),
        ));
    }
    if let Err(e) = sasl.client_credentials(mechanism) {
        return Err(ConfigError::invalid(
            key,
            value,
            format!("this node connects to listener {listener} with {value}: {e}"),
        ));
    }
    Ok(mechanism)
}

/// The security of each listener this node binds (`listeners`) or connects to (the
/// controller listeners, the inter-broker listener), with the `ssl.*` settings of those
/// that use TLS loaded. An `ssl.*` key no such listener reads is an error (it would do
/// nothing), as is a TLS listener this node binds without a key store.
fn listener_security(
    props: &BTreeMap<String, String>,
    protocols: &BTreeMap<String, SecurityProtocol>,
    listeners: &[Endpoint],
    controller_listener_names: &[String],
    inter_broker_listener_name: Option<&str>,
) -> Result<BTreeMap<String, ListenerSecurity>, ConfigError> {
    let mut used: Vec<String> = listeners
        .iter()
        .map(|e| e.listener_name.to_ascii_uppercase())
        .chain(controller_listener_names.iter().cloned())
        .chain(inter_broker_listener_name.map(str::to_string))
        .collect();
    used.sort();
    used.dedup();
    let invalid = |e: moldau_security::tls::SslConfigError| {
        let value = props.get(&e.key).map_or("", String::as_str);
        ConfigError::invalid(&e.key, &shown_value(&e.key, value), e.message)
    };
    let mut security = BTreeMap::new();
    for name in &used {
        let Some(&protocol) = protocols.get(name) else {
            continue;
        };
        let sasl = if protocol.uses_sasl() {
            Some(Arc::new(crate::sasl::SaslListenerConfig::load(
                props, name,
            )?))
        } else {
            None
        };
        let client_key = if Some(name.as_str()) == inter_broker_listener_name {
            Some("sasl.mechanism.inter.broker.protocol")
        } else if controller_listener_names.first() == Some(name) {
            Some("sasl.mechanism.controller.protocol")
        } else {
            None
        };
        let client_mechanism = match (&sasl, client_key) {
            (Some(sasl), Some(key)) => Some(client_mechanism(props, key, name, sasl)?),
            _ => None,
        };
        let ssl = if protocol.uses_tls() {
            let prefix = format!("listener.name.{}.", name.to_ascii_lowercase());
            let ssl = SslConfig::load(&SslProps::new(props, prefix)).map_err(invalid)?;
            let bound = listeners
                .iter()
                .any(|e| e.listener_name.eq_ignore_ascii_case(name));
            if bound && ssl.key_store.is_none() {
                return Err(ConfigError::invalid(
                    "listeners",
                    props.get("listeners").map_or("", String::as_str),
                    format!(
                        "listener {name} uses {}: set ssl.keystore.location (or \
                         listener.name.{}.ssl.keystore.location, or ssl.keystore.key with \
                         ssl.keystore.certificate.chain)",
                        protocol.name(),
                        name.to_ascii_lowercase()
                    ),
                ));
            }
            Some(Arc::new(ssl))
        } else {
            None
        };
        security.insert(
            name.clone(),
            ListenerSecurity {
                protocol,
                ssl,
                sasl,
                client_mechanism,
            },
        );
    }
    let tls_listeners: Vec<String> = security
        .iter()
        .filter(|(_, s)| s.protocol.uses_tls())
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    let sasl_listeners: Vec<String> = security
        .iter()
        .filter(|(_, s)| s.protocol.uses_sasl())
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    for (key, value) in props {
        let (owner, listeners) = match (ssl_key_listener(key), is_sasl_key(key)) {
            (Some(owner), _) => (owner, &tls_listeners),
            (None, Some(owner)) => (owner, &sasl_listeners),
            (None, None) => continue,
        };
        let unread = match owner {
            None => listeners.is_empty(),
            Some(listener) => !listeners.iter().any(|l| l == listener),
        };
        if unread {
            return Err(ConfigError::invalid(
                key,
                &shown_value(key, value),
                "no listener of this node reads it (ssl.* keys are for SSL and SASL_SSL \
                 listeners, sasl.* keys for SASL_PLAINTEXT and SASL_SSL ones; check \
                 listeners and listener.security.protocol.map)",
            ));
        }
    }
    Ok(security)
}

const BROKER_ROLE: &str = "broker";
const CONTROLLER_ROLE: &str = "controller";

/// `process.roles` as Kafka's `parseProcessRoles`: `broker` and/or `controller`, each at
/// most once. Unset, Moldau runs combined (Kafka has no default); set, it must name a role.
fn parse_process_roles(value: Option<&str>) -> Result<Vec<String>, ConfigError> {
    const KEY: &str = "process.roles";
    let Some(value) = value else {
        return Ok(vec![BROKER_ROLE.to_string(), CONTROLLER_ROLE.to_string()]);
    };
    let roles: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if roles.is_empty() {
        return Err(ConfigError::invalid(
            KEY,
            value,
            "must name at least one role: broker, controller, or both (broker,controller)",
        ));
    }
    for (i, role) in roles.iter().enumerate() {
        if role != BROKER_ROLE && role != CONTROLLER_ROLE {
            return Err(ConfigError::invalid(
                KEY,
                value,
                format!(
                    "unknown process role '{role}' (only 'broker' and 'controller' are allowed roles)"
                ),
            ));
        }
        if roles[..i].contains(role) {
            return Err(ConfigError::invalid(
                KEY,
                value,
                format!("duplicate role name '{role}'"),
            ));
        }
    }
    Ok(roles)
}

/// Kafka's `KafkaConfig.validateValues` rules for each `process.roles`:
/// - broker-only: voters are required and do not include this node; it reaches them
///   through `controller.listener.names` (at least one name, only the first used), which
///   it must not bind (no name in `listeners`).
/// - controller-only: voters are required (this node among them, checked with them);
///   `listeners` holds controller listeners only; `controller.listener.names` must not
///   name an explicitly set `inter.broker.listener.name`.
/// - any controller role: every `controller.listener.names` entry is in `listeners`, at
///   least one (Moldau lets a combined node that is its own only voter leave it empty).
fn check_process_roles(
    props: &BTreeMap<String, String>,
    roles: &[String],
    node_id: i32,
    listeners: &[Endpoint],
    controller_listener_names: &[String],
    voters: &[QuorumVoter],
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    // A dynamic quorum (KIP-853) finds its voters through bootstrap servers.
    let dynamic = props
        .get("controller.quorum.bootstrap.servers")
        .is_some_and(|v| !v.trim().is_empty());
    const VOTERS_KEY: &str = "controller.quorum.voters";
    const NAMES_KEY: &str = "controller.listener.names";
    let is_broker = roles.iter().any(|r| r == BROKER_ROLE);
    let is_controller = roles.iter().any(|r| r == CONTROLLER_ROLE);
    let value = |key: &str| props.get(key).map_or("", String::as_str).to_string();
    let bound = |name: &str| {
        listeners
            .iter()
            .any(|l| l.listener_name.eq_ignore_ascii_case(name))
    };
    let roles_value = roles.join(",");
    if !(is_broker && is_controller) && voters.is_empty() && !dynamic {
        return Err(ConfigError::invalid(
            VOTERS_KEY,
            &value(VOTERS_KEY),
            format!(
                "with process.roles={roles_value}, controller.quorum.voters or \
                 controller.quorum.bootstrap.servers must contain a parseable set of \
                 controllers"
            ),
        ));
    }
    if is_controller && voters.is_empty() && dynamic && controller_listener_names.is_empty() {
        return Err(ConfigError::invalid(
            NAMES_KEY,
            &value(NAMES_KEY),
            "a controller of a dynamic quorum (controller.quorum.bootstrap.servers) is \
             reached through its controller listener: name one in listeners",
        ));
    }
    if is_broker && !is_controller {
        if voters.iter().any(|v| v.node_id == node_id) {
            let ids: Vec<i32> = voters.iter().map(|v| v.node_id).collect();
            return Err(ConfigError::invalid(
                VOTERS_KEY,
                &value(VOTERS_KEY),
                format!(
                    "if process.roles contains just the 'broker' role, the node id {node_id} \
                     must not be included in the set of voters {ids:?}"
                ),
            ));
        }
        if controller_listener_names.is_empty() {
            return Err(ConfigError::invalid(
                NAMES_KEY,
                &value(NAMES_KEY),
                "must contain at least one value when running KRaft with just the broker role",
            ));
        }
        if controller_listener_names.iter().any(|name| bound(name)) {
            return Err(ConfigError::invalid(
                NAMES_KEY,
                &value(NAMES_KEY),
                "must not contain a value appearing in the 'listeners' configuration when \
                 running KRaft with just the broker role",
            ));
        }
        if controller_listener_names.len() > 1 {
            warnings.push(format!(
                "{NAMES_KEY} has multiple entries; only the first will be used since \
                 process.roles=broker: {controller_listener_names:?}"
            ));
        }
        return Ok(());
    }
    // The controller role (alone or combined).
    if !is_broker {
        if let Some(extra) = listeners
            .iter()
            .find(|l| !controller_listener_names.contains(&l.listener_name.to_ascii_uppercase()))
        {
            return Err(ConfigError::invalid(
                "listeners",
                &value("listeners"),
                format!(
                    "the listeners config must only contain KRaft controller listeners from \
                     controller.listener.names when process.roles=controller ({} is not one)",
                    extra.listener_name
                ),
            ));
        }
        if let Some(inter_broker) = props
            .get("inter.broker.listener.name")
            .map(|v| v.trim().to_ascii_uppercase())
            .filter(|v| controller_listener_names.contains(v))
        {
            return Err(ConfigError::invalid(
                NAMES_KEY,
                &value(NAMES_KEY),
                format!(
                    "must not contain the explicitly set inter.broker.listener.name \
                     ({inter_broker}) when process.roles=controller"
                ),
            ));
        }
    }
    if let Some(unbound) = controller_listener_names.iter().find(|name| !bound(name)) {
        return Err(ConfigError::invalid(
            NAMES_KEY,
            &value(NAMES_KEY),
            format!(
                "must only contain values appearing in the 'listeners' configuration when \
                 running the KRaft controller role ({unbound} is not in listeners)"
            ),
        ));
    }
    if !is_broker && controller_listener_names.is_empty() {
        return Err(ConfigError::invalid(
            NAMES_KEY,
            &value(NAMES_KEY),
            "must contain at least one value appearing in the 'listeners' configuration when \
             running the KRaft controller role",
        ));
    }
    Ok(())
}

fn is_known_key(key: &str) -> bool {
    const AUTHORIZER_KEYS: &[&str] = &[
        "authorizer.class.name",
        "super.users",
        "allow.everyone.if.no.acl.found",
    ];
    if AUTHORIZER_KEYS.contains(&key) {
        return true;
    }
    // ssl.* keys are checked by the TLS settings themselves (unknown ones are errors).
    ssl_key_listener(key).is_some()
        || is_sasl_key(key).is_some()
        || key == "connection.failed.authentication.delay.ms"
        || BROKER_KEYS.iter().any(|(k, _, _)| *k == key)
        || ACCEPTED_KEYS.contains(&key)
        || TOPIC_CONFIGS.iter().any(|d| d.broker_synonym == key)
}

/// Topic defaults from broker keys. Time keys resolve as Kafka does: `*.ms` wins over
/// `*.minutes`, which wins over `*.hours`.
fn log_defaults(props: &BTreeMap<String, String>) -> Result<LogConfig, ConfigError> {
    let mut config = LogConfig::default();
    if let Some(v) = props.get("log.roll.hours") {
        let hours: i64 = parse_int("log.roll.hours", v, 1, i32::MAX as i64)?;
        config.set("segment.ms", &(hours * 3_600_000).to_string())?;
    }
    if let Some(v) = props.get("log.roll.jitter.hours") {
        let hours: i64 = parse_int("log.roll.jitter.hours", v, 0, i32::MAX as i64)?;
        config.set("segment.jitter.ms", &(hours * 3_600_000).to_string())?;
    }
    if let Some(v) = props.get("log.retention.hours") {
        let hours: i64 = parse_int("log.retention.hours", v, -1, i32::MAX as i64)?;
        let ms = if hours < 0 { -1 } else { hours * 3_600_000 };
        config.set("retention.ms", &ms.to_string())?;
    }
    if let Some(v) = props.get("log.retention.minutes") {
        let minutes: i64 = parse_int("log.retention.minutes", v, -1, i32::MAX as i64)?;
        let ms = if minutes < 0 { -1 } else { minutes * 60_000 };
        config.set("retention.ms", &ms.to_string())?;
    }
    for def in TOPIC_CONFIGS {
        if let Some(v) = props.get(def.broker_synonym) {
            config
                .set(def.name, v)
                .map_err(|e| ConfigError::InvalidValue {
                    key: def.broker_synonym.to_string(),
                    value: e.value,
                    reason: e.reason,
                })?;
        }
    }
    Ok(config)
}

/// The group coordinator's settings, Kafka's names and defaults.
fn group_config(
    props: &BTreeMap<String, String>,
) -> Result<moldau_coordinator::GroupConfig, ConfigError> {
    let defaults = moldau_coordinator::GroupConfig::default();
    let min_session_timeout_ms =
        parse_opt(props, "group.min.session.timeout.ms", 6_000, 0, i32::MAX)?;
    let max_session_timeout_ms = parse_opt(
        props,
        "group.max.session.timeout.ms",
        1_800_000,
        0,
        i32::MAX,
    )?;
    if max_session_timeout_ms < min_session_timeout_ms {
        return Err(ConfigError::invalid(
            "group.max.session.timeout.ms",
            &max_session_timeout_ms.to_string(),
            "must not be below group.min.session.timeout.ms",
        ));
    }
    let retention_minutes: i64 = parse_opt(
        props,
        "offsets.retention.minutes",
        10_080,
        1,
        i32::MAX as i64,
    )?;
    Ok(moldau_coordinator::GroupConfig {
        min_session_timeout_ms,
        max_session_timeout_ms,
        initial_rebalance_delay_ms: parse_opt(
            props,
            "group.initial.rebalance.delay.ms",
            3_000,
            0,
            i32::MAX,
        )?,
        max_size: parse_opt(props, "group.max.size", i32::MAX, 1, i32::MAX)?,
        offsets_retention_ms: retention_minutes * 60_000,
        offsets_retention_check_interval_ms: parse_opt(
            props,
            "offsets.retention.check.interval.ms",
            600_000,
            1,
            i64::MAX,
        )?,
        consumer_session_timeout_ms: parse_opt(
            props,
            "group.consumer.session.timeout.ms",
            45_000,
            1,
            i32::MAX,
        )?,
        consumer_heartbeat_interval_ms: parse_opt(
            props,
            "group.consumer.heartbeat.interval.ms",
            5_000,
            1,
            i32::MAX,
        )?,
        offset_metadata_max_bytes: parse_opt(
            props,
            "offset.metadata.max.bytes",
            4096,
            0,
            i32::MAX as usize,
        )?,
        ..defaults
    })
}

fn parse_int<T>(key: &str, value: &str, min: T, max: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let n: T = value
        .trim()
        .parse()
        .map_err(|_| ConfigError::invalid(key, value, "not a number"))?;
    if n < min || n > max {
        return Err(ConfigError::invalid(
            key,
            value,
            format!("must be between {min} and {max}"),
        ));
    }
    Ok(n)
}

fn parse_opt<T>(
    props: &BTreeMap<String, String>,
    key: &str,
    default: T,
    min: T,
    max: T,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    match props.get(key) {
        Some(v) => parse_int(key, v, min, max),
        None => Ok(default),
    }
}

/// A key without a fixed default: `None` when not set.
fn parse_set<T>(
    props: &BTreeMap<String, String>,
    key: &str,
    min: T,
    max: T,
) -> Result<Option<T>, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    props
        .get(key)
        .map(|v| parse_int(key, v, min, max))
        .transpose()
}

fn parse_bool(
    props: &BTreeMap<String, String>,
    key: &str,
    default: bool,
) -> Result<bool, ConfigError> {
    match props.get(key).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" => Ok(false),
        Some(v) => Err(ConfigError::invalid(key, &v, "expected true or false")),
    }
}

/// Java `.properties` as Kafka users write them: `key=value` or `key: value`, `#`/`!`
/// comments, blank lines, and `\` line continuations.
fn parse_properties(path: &Path, text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut props = BTreeMap::new();
    let mut pending = String::new();
    let mut pending_line = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        if pending.is_empty() {
            pending_line = i + 1;
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            pending.push_str(stripped);
            continue;
        }
        pending.push_str(line);
        let entry = std::mem::take(&mut pending);
        let split = entry.find(['=', ':']).ok_or_else(|| ConfigError::Syntax {
            path: path.to_path_buf(),
            line: pending_line,
            text: entry.clone(),
        })?;
        let (key, value) = entry.split_at(split);
        props.insert(key.trim().to_string(), value[1..].trim().to_string());
    }
    Ok(props)
}

// ---- Connections and request memory (network.rs acts on these) ----

/// Connection limits (Kafka's `ConnectionQuotas`) and the budget for request bytes.
#[derive(Clone, Debug)]
pub struct ConnectionConfig {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// `max.connections.per.ip.overrides`: per-IP limits.
    pub max_connections_per_ip_overrides: BTreeMap<std::net::IpAddr, usize>,
    /// New connections per second accepted across all listeners.
    pub max_connection_creation_rate: u32,
    /// Time since the last complete request after which a connection is closed.
    pub connections_max_idle_ms: u64,
    /// Bytes of requests being read, decoded and handled across all connections.
    /// Kafka's `queued.max.request.bytes` is unbounded at -1; Moldau then uses
    /// `socket.request.max.bytes` (one largest request at a time, many small ones).
    pub queued_max_request_bytes: usize,
}

fn connection_config(
    props: &BTreeMap<String, String>,
    listeners: &[Endpoint],
) -> Result<ConnectionConfig, ConfigError> {
    validate_listeners(listeners)?;
    let max_connections_per_ip: i32 =
        parse_opt(props, "max.connections.per.ip", i32::MAX, 0, i32::MAX)?;
    let mut overrides = BTreeMap::new();
    let key = "max.connections.per.ip.overrides";
    if let Some(value) = props.get(key) {
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (host, count) = item
                .rsplit_once(':')
                .ok_or_else(|| ConfigError::invalid(key, value, "expected host:count,..."))?;
            let count: i32 = parse_int(key, count, 0, i32::MAX)?;
            // Kafka also resolves host names; an IP literal keeps the limit unambiguous.
            let ip: std::net::IpAddr = host
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| ConfigError::invalid(key, value, "hosts must be IP addresses"))?;
            overrides.insert(ip, count as usize);
        }
    }
    // As Kafka: a per-IP limit of 0 must come with overrides, or no client could connect.
    if max_connections_per_ip == 0 && overrides.is_empty() {
        return Err(ConfigError::invalid(
            "max.connections.per.ip",
            "0",
            "0 requires max.connections.per.ip.overrides",
        ));
    }
    let socket_request_max_bytes: i64 = parse_opt(
        props,
        "socket.request.max.bytes",
        104_857_600,
        1,
        i32::MAX as i64,
    )?;
    let queued: i64 = parse_opt(props, "queued.max.request.bytes", -1, -1, i64::MAX)?;
    let queued_max_request_bytes = match queued {
        -1 => socket_request_max_bytes,
        0 => {
            return Err(ConfigError::invalid(
                "queued.max.request.bytes",
                "0",
                "must be -1 or positive",
            ))
        }
        n if n < socket_request_max_bytes => return Err(ConfigError::invalid(
            "queued.max.request.bytes",
            &n.to_string(),
            "must be at least socket.request.max.bytes, or the largest request could never be read",
        )),
        n => n,
    };
    Ok(ConnectionConfig {
        max_connections: parse_opt::<i32>(props, "max.connections", i32::MAX, 0, i32::MAX)?
            as usize,
        max_connections_per_ip: max_connections_per_ip as usize,
        max_connections_per_ip_overrides: overrides,
        max_connection_creation_rate: parse_opt::<i32>(
            props,
            "max.connection.creation.rate",
            i32::MAX,
            0,
            i32::MAX,
        )? as u32,
        connections_max_idle_ms: parse_opt(props, "connections.max.idle.ms", 600_000, 1, u64::MAX)?,
        queued_max_request_bytes: usize::try_from(queued_max_request_bytes).unwrap_or(usize::MAX),
    })
}

/// As Kafka: listener names are unique, and so are ports (other than 0, picked at bind).
fn validate_listeners(listeners: &[Endpoint]) -> Result<(), ConfigError> {
    let value = listeners
        .iter()
        .map(|l| format!("{}://{}:{}", l.listener_name, l.host, l.port))
        .collect::<Vec<_>>()
        .join(",");
    for (i, l) in listeners.iter().enumerate() {
        for other in &listeners[..i] {
            if other.listener_name == l.listener_name {
                return Err(ConfigError::invalid(
                    "listeners",
                    &value,
                    format!("listener name {} is used twice", l.listener_name),
                ));
            }
            if l.port != 0 && other.port == l.port {
                return Err(ConfigError::invalid(
                    "listeners",
                    &value,
                    format!("port {} is used by two listeners", l.port),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod connection_config_tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<ServerConfig, String> {
        let overrides: Vec<_> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ServerConfig::load(None, &overrides)
            .map(|(c, _)| c)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_kafkas() {
        let c = load(&[]).unwrap().connections;
        assert_eq!(c.max_connections, i32::MAX as usize);
        assert_eq!(c.max_connections_per_ip, i32::MAX as usize);
        assert_eq!(c.max_connection_creation_rate, i32::MAX as u32);
        assert_eq!(c.connections_max_idle_ms, 600_000);
        assert_eq!(c.queued_max_request_bytes, 104_857_600);
    }

    #[test]
    fn overrides_parse_and_bad_values_name_the_key() {
        let c = load(&[("max.connections.per.ip.overrides", "127.0.0.1:5, [::1]:7")])
            .unwrap()
            .connections;
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(c.max_connections_per_ip_overrides[&ip("127.0.0.1")], 5);
        assert_eq!(c.max_connections_per_ip_overrides[&ip("::1")], 7);
        for (key, value) in [
            ("max.connections.per.ip.overrides", "127.0.0.1"),
            ("max.connections.per.ip.overrides", "host.example:3"),
            ("max.connections.per.ip", "0"),
            ("queued.max.request.bytes", "1000"),
            ("max.connections", "-2"),
        ] {
            let err = load(&[(key, value)]).unwrap_err();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn listener_names_and_ports_are_unique() {
        let map = ("listener.security.protocol.map", "A:PLAINTEXT,B:PLAINTEXT");
        let err = load(&[("listeners", "A://:9092,A://:9093"), map]).unwrap_err();
        assert!(err.contains("used twice"), "{err}");
        let err = load(&[("listeners", "A://:9092,B://127.0.0.1:9092"), map]).unwrap_err();
        assert!(err.contains("port 9092"), "{err}");
        let inter_broker = ("inter.broker.listener.name", "A");
        load(&[
            ("listeners", "A://127.0.0.1:0,B://127.0.0.1:0"),
            map,
            inter_broker,
        ])
        .unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<(ServerConfig, Vec<String>), ConfigError> {
        let overrides: Vec<_> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ServerConfig::load(None, &overrides)
    }

    #[test]
    fn defaults_are_a_single_combined_node() {
        let (c, warnings) = load(&[]).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(c.node_id, 1);
        assert_eq!(c.listeners[0].port, 9092);
        assert_eq!(c.advertised().host, "127.0.0.1");
        assert_eq!(c.log_dir, PathBuf::from("./data"));
        assert_eq!(c.log_defaults, LogConfig::default());
    }

    #[test]
    fn log_keys_become_topic_defaults_with_kafka_precedence() {
        let (c, _) = load(&[
            ("log.retention.hours", "1"),
            ("log.retention.minutes", "2"),
            ("log.segment.bytes", "1048576"),
        ])
        .unwrap();
        assert_eq!(c.log_defaults.retention_ms, 120_000);
        assert_eq!(c.log_defaults.segment_bytes, 1_048_576);
        let (c, _) = load(&[("log.retention.minutes", "2"), ("log.retention.ms", "5")]).unwrap();
        assert_eq!(c.log_defaults.retention_ms, 5);
    }

    #[test]
    fn invalid_values_name_the_key() {
        let err = load(&[("num.partitions", "zero")]).unwrap_err().to_string();
        assert!(
            err.contains("num.partitions") && err.contains("zero"),
            "{err}"
        );
        let err = load(&[("log.segment.bytes", "-5")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("log.segment.bytes"), "{err}");
        let err = load(&[("listeners", "127.0.0.1:9092")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("listeners"), "{err}");
    }

    #[test]
    fn security_keys_are_startup_errors_naming_the_key() {
        for (key, value) in [
            ("principal.builder.class", "x.Builder"),
            ("delegation.token.secret.key", "k"),
            ("sasl.kerberos.service.name", "kafka"),
            ("sasl.login.class", "x.Login"),
            (
                "listener.name.sasl_plaintext.plain.sasl.login.class",
                "x.Login",
            ),
        ] {
            let err = load(&[(key, value)]).unwrap_err().to_string();
            assert!(
                err.contains(key) && err.contains("not yet supported"),
                "{key}: {err}"
            );
        }
        // SASL keys Moldau reads, with no SASL listener to read them.
        for (key, value) in [
            ("sasl.enabled.mechanisms", "PLAIN"),
            ("connections.max.reauth.ms", "1000"),
            ("listener.name.sasl_plaintext.plain.sasl.jaas.config", "x"),
        ] {
            let err = load(&[(key, value)]).unwrap_err().to_string();
            assert!(
                err.contains(key) && err.contains("no listener of this node reads it"),
                "{key}: {err}"
            );
        }
        // Kafka's "off" values ask for nothing; connection limits per listener are not security.
        let (c, _) = load(&[
            ("authorizer.class.name", ""),
            ("super.users", ""),
            ("security.inter.broker.protocol", "PLAINTEXT"),
        ])
        .unwrap();
        assert!(c.authorizer.is_none());
        assert!(!is_unsupported_security_key(
            "listener.name.plaintext.max.connections"
        ));
        // The JAAS config is a secret: the error does not print it.
        let err = load(&[("listener.name.x.plain.sasl.jaas.config", "pw=secret")])
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret") && err.contains("[hidden]"), "{err}");
    }

    #[test]
    fn the_standard_authorizer_and_its_keys() {
        let (c, _) = load(&[
            (
                "authorizer.class.name",
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            ),
            ("super.users", "User:admin;User:broker"),
            ("allow.everyone.if.no.acl.found", "true"),
        ])
        .unwrap();
        let settings = c.authorizer.unwrap();
        assert_eq!(settings.super_users, vec!["User:admin", "User:broker"]);
        assert!(settings.allow_everyone_if_no_acl_found);
        for (pairs, key) in [
            (
                vec![(
                    "authorizer.class.name",
                    "kafka.security.authorizer.AclAuthorizer",
                )],
                "authorizer.class.name",
            ),
            (vec![("super.users", "User:admin")], "super.users"),
            (
                vec![
                    (
                        "authorizer.class.name",
                        "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                    ),
                    ("super.users", "admin"),
                ],
                "super.users",
            ),
        ] {
            let err = load(&pairs).unwrap_err().to_string();
            assert!(err.contains(key), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn ssl_keys_need_a_tls_listener_that_reads_them() {
        // A TLS listener needs a key store; the error says which key.
        let err = load(&[
            ("listeners", "SSL://127.0.0.1:9093"),
            ("inter.broker.listener.name", "SSL"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("ssl.keystore.location"), "{err}");
        // ssl.* keys with no TLS listener would do nothing: an error naming the key.
        for key in [
            "ssl.keystore.location",
            "listener.name.internal.ssl.keystore.location",
        ] {
            let err = load(&[(key, "/ks")]).unwrap_err().to_string();
            assert!(
                err.contains(key) && err.contains("no listener of this node reads it"),
                "{key}: {err}"
            );
        }
        // A missing key store file names the key.
        let err = load(&[
            (
                "listeners",
                "PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9093",
            ),
            ("listener.name.ssl.ssl.keystore.location", "/no/such.p12"),
            ("listener.name.ssl.ssl.keystore.password", "secret"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("listener.name.ssl.ssl.keystore.location")
                && err.contains("cannot read /no/such.p12"),
            "{err}"
        );
        let err = load(&[
            (
                "listeners",
                "PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9093",
            ),
            ("ssl.bogus", "1"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("ssl.bogus"), "{err}");
    }

    #[test]
    fn sasl_listeners_need_mechanisms_users_and_a_client_mechanism() {
        let sasl = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = vec![(
                "listeners",
                "PLAINTEXT://127.0.0.1:9092,SASL_PLAINTEXT://127.0.0.1:9093",
            )];
            pairs.extend_from_slice(extra);
            load(&pairs)
        };
        // Kafka's default mechanism, GSSAPI, needs Kerberos.
        let err = sasl(&[]).unwrap_err().to_string();
        assert!(
            err.contains("sasl.enabled.mechanisms") && err.contains("GSSAPI"),
            "{err}"
        );
        // PLAIN's users come from the listener's JAAS config.
        let err = sasl(&[("sasl.enabled.mechanisms", "PLAIN")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("listener.name.sasl_plaintext.plain.sasl.jaas.config"),
            "{err}"
        );
        let jaas = "org.apache.kafka.common.security.plain.PlainLoginModule required \
                    username=\"n\" password=\"p\" user_n=\"p\";";
        let (c, _) = sasl(&[
            ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-512"),
            ("listener.name.sasl_plaintext.plain.sasl.jaas.config", jaas),
        ])
        .unwrap();
        let security = &c.listener_security["SASL_PLAINTEXT"];
        assert_eq!(security.protocol, SecurityProtocol::SaslPlaintext);
        assert_eq!(security.sasl.as_ref().unwrap().enabled_mechanisms.len(), 2);
        // As the inter-broker listener it needs this node's mechanism and credentials.
        let inter = [
            ("sasl.enabled.mechanisms", "PLAIN"),
            ("listener.name.sasl_plaintext.plain.sasl.jaas.config", jaas),
            ("inter.broker.listener.name", "SASL_PLAINTEXT"),
        ];
        let err = sasl(&inter).unwrap_err().to_string();
        assert!(
            err.contains("sasl.mechanism.inter.broker.protocol"),
            "{err}"
        );
        let mut with_mechanism = inter.to_vec();
        with_mechanism.push(("sasl.mechanism.inter.broker.protocol", "PLAIN"));
        let (c, _) = sasl(&with_mechanism).unwrap();
        assert_eq!(
            c.listener_security["SASL_PLAINTEXT"].client_mechanism,
            Some(crate::sasl::SaslMechanism::Plain)
        );
        let mut oauth = inter.to_vec();
        oauth.push(("sasl.mechanism.inter.broker.protocol", "OAUTHBEARER"));
        let err = sasl(&oauth).unwrap_err().to_string();
        assert!(err.contains("OAUTHBEARER"), "{err}");
    }

    #[test]
    fn listener_names_map_to_protocols() {
        let (c, _) = load(&[
            ("listeners", "internal://127.0.0.1:9093"),
            ("listener.security.protocol.map", "INTERNAL:PLAINTEXT"),
            ("inter.broker.listener.name", "INTERNAL"),
        ])
        .unwrap();
        assert_eq!(c.listeners[0].listener_name, "internal");
        let err = load(&[("listeners", "INTERNAL://127.0.0.1:9093")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no security protocol defined for listener INTERNAL"),
            "{err}"
        );
    }

    #[test]
    fn the_meta_address_is_not_advertised() {
        for overrides in [
            vec![("listeners", "PLAINTEXT://0.0.0.0:9092")],
            vec![
                ("listeners", "PLAINTEXT://:9092"),
                ("advertised.listeners", "PLAINTEXT://0.0.0.0:9092"),
            ],
        ] {
            let err = load(&overrides).unwrap_err().to_string();
            assert!(
                err.contains("advertised.listeners") && err.contains("nonroutable"),
                "{err}"
            );
        }
        load(&[
            ("listeners", "PLAINTEXT://0.0.0.0:9092"),
            ("advertised.listeners", "PLAINTEXT://broker-1.example:9092"),
        ])
        .unwrap();
        load(&[("listeners", "PLAINTEXT://:9092")]).unwrap();
    }

    #[test]
    fn quorum_voters_are_parsed_and_checked_against_this_node() {
        let key = "controller.quorum.voters";
        let (c, _) = load(&[(key, "1@localhost:9093"), ("broker.rack", "r1")]).unwrap();
        assert_eq!(
            c.controller_quorum_voters,
            vec![QuorumVoter {
                node_id: 1,
                host: "localhost".into(),
                port: 9093
            }]
        );
        assert_eq!(c.broker_rack.as_deref(), Some("r1"));
        let (c, _) = load(&[(key, "1@[::1]:9093")]).unwrap();
        assert_eq!(c.controller_quorum_voters[0].host, "::1");
        assert!(load(&[]).unwrap().0.controller_quorum_voters.is_empty());
        for (value, reason) in [
            ("localhost:9093", "{id}@{host}:{port}"),
            ("x@localhost:9093", "non-negative integer"),
            ("1@localhost", "{id}@{host}:{port}"),
            ("1@localhost:0", "1 to 65535"),
            ("1@:9093", "host is empty"),
            ("1@a:1,1@b:2", "listed twice"),
            ("2@localhost:9093", "not a voter"),
            ("1@a:9093,2@b:9093,3@c:9093", "controller.listener.names"),
        ] {
            let err = load(&[(key, value)]).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains(reason), "{value}: {err}");
        }
        // Three voters, with the controller listener bound and never advertised.
        let (c, _) = load(&[
            (key, "1@a:9093,2@b:9093,3@c:9093"),
            ("controller.listener.names", "CONTROLLER"),
            (
                "listeners",
                "CONTROLLER://127.0.0.1:9093,PLAINTEXT://127.0.0.1:9092",
            ),
        ])
        .unwrap();
        assert_eq!(c.controller_quorum_voters.len(), 3);
        assert_eq!(c.controller_listener_names, vec!["CONTROLLER".to_string()]);
        assert_eq!(c.advertised().listener_name, "PLAINTEXT");
    }

    #[test]
    fn protocol_map_and_controller_listener_names_are_validated() {
        let map = "listener.security.protocol.map";
        for (value, reason) in [
            ("PLAINTEXT", "NAME:PROTOCOL"),
            ("PLAINTEXT:TLS", "unknown security protocol TLS"),
            ("A:PLAINTEXT,a:PLAINTEXT", "mapped twice"),
        ] {
            let err = load(&[(map, value)]).unwrap_err().to_string();
            assert!(err.contains(map) && err.contains(reason), "{err}");
        }
        let controller = "controller.listener.names";
        let err = load(&[(map, "PLAINTEXT:PLAINTEXT"), (controller, "CONTROLLER")])
            .unwrap_err()
            .to_string();
        assert!(err.contains(controller) && err.contains(map), "{err}");
        let err = load(&[(controller, "CONTROLLER")]).unwrap_err().to_string();
        assert!(
            err.contains(controller) && err.contains("listeners"),
            "{err}"
        );
        // Without an explicit map a controller listener is PLAINTEXT, as in Kafka.
        load(&[
            (controller, "CONTROLLER"),
            (
                "listeners",
                "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
            ),
        ])
        .unwrap();
    }

    #[test]
    fn process_roles_are_parsed_as_kafka_parses_them() {
        let key = "process.roles";
        let (c, _) = load(&[]).unwrap();
        assert!(c.is_broker() && c.is_controller());
        for (value, reason) in [
            ("", "at least one role"),
            (" , ", "at least one role"),
            ("broker,zookeeper", "unknown process role 'zookeeper'"),
            ("Broker", "unknown process role 'Broker'"),
            ("broker,broker", "duplicate role name 'broker'"),
        ] {
            let err = load(&[(key, value)]).unwrap_err().to_string();
            assert!(
                err.contains(key) && err.contains(reason),
                "{value:?}: {err}"
            );
        }
        let (c, _) = load(&[(key, "controller, broker")]).unwrap();
        assert!(c.is_broker() && c.is_controller());
    }

    #[test]
    fn metadata_snapshot_keys_take_kafkas_defaults_and_bounds() {
        let (c, _) = load(&[]).unwrap();
        assert_eq!(
            c.metadata_log_max_record_bytes_between_snapshots,
            20_971_520
        );
        assert_eq!(c.metadata_log_max_snapshot_interval_ms, 3_600_000);
        let (c, _) = load(&[
            ("metadata.log.max.record.bytes.between.snapshots", "1"),
            ("metadata.log.max.snapshot.interval.ms", "0"),
        ])
        .unwrap();
        assert_eq!(c.metadata_log_max_record_bytes_between_snapshots, 1);
        assert_eq!(c.metadata_log_max_snapshot_interval_ms, 0);
        for (key, value) in [
            ("metadata.log.max.record.bytes.between.snapshots", "0"),
            ("metadata.log.max.record.bytes.between.snapshots", "lots"),
            ("metadata.log.max.snapshot.interval.ms", "-1"),
        ] {
            let err = load(&[(key, value)]).unwrap_err().to_string();
            assert!(err.contains(key), "{key}={value}: {err}");
        }
    }

    #[test]
    fn inter_broker_listener_name_is_an_advertised_broker_listener() {
        let (c, _) = load(&[]).unwrap();
        assert_eq!(c.inter_broker_listener_name, "PLAINTEXT");
        let two = [
            (
                "listeners",
                "INTERNAL://127.0.0.1:9092,EXTERNAL://127.0.0.1:9094",
            ),
            (
                "listener.security.protocol.map",
                "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT",
            ),
        ];
        let (c, _) = load(&with_changes(
            &two,
            &[("inter.broker.listener.name", "internal")],
        ))
        .unwrap();
        assert_eq!(c.inter_broker_listener_name, "INTERNAL");
        assert_eq!(c.advertised_listeners.len(), 2);
        // As Kafka: unset, it is the listener named after security.inter.broker.protocol.
        let (c, _) = load(&[("security.inter.broker.protocol", "PLAINTEXT")]).unwrap();
        assert_eq!(c.inter_broker_listener_name, "PLAINTEXT");
        for (changes, reason) in [
            (
                with_changes(&two, &[]),
                "\"PLAINTEXT\" for config inter.broker.listener.name: must be a listener name \
                 defined in advertised.listeners",
            ),
            (
                with_changes(&two, &[("inter.broker.listener.name", "OTHER")]),
                "valid options based on currently configured listeners are INTERNAL,EXTERNAL",
            ),
            (
                with_changes(
                    &two,
                    &[
                        ("inter.broker.listener.name", "INTERNAL"),
                        ("security.inter.broker.protocol", "PLAINTEXT"),
                    ],
                ),
                "only one of inter.broker.listener.name and security.inter.broker.protocol",
            ),
            (
                with_changes(
                    &two,
                    &[
                        ("inter.broker.listener.name", "INTERNAL"),
                        ("advertised.listeners", "EXTERNAL://h:9094"),
                    ],
                ),
                "valid options based on currently configured listeners are EXTERNAL",
            ),
        ] {
            let err = load(&changes).unwrap_err().to_string();
            assert!(
                err.contains("inter.broker.listener.name") && err.contains(reason),
                "{changes:?}: {err}"
            );
        }
    }

    /// `base` keys with `changes` on top (an empty value removes a key).
    fn with_changes(
        base: &[(&'static str, &'static str)],
        changes: &[(&'static str, &'static str)],
    ) -> Vec<(&'static str, &'static str)> {
        let mut props: BTreeMap<&str, &str> = base.iter().copied().collect();
        for (k, v) in changes {
            if v.is_empty() {
                props.remove(k);
            } else {
                props.insert(k, v);
            }
        }
        props.into_iter().collect()
    }

    /// A broker-only node's keys, with `changes` on top.
    fn broker_only(changes: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let base = [
            ("process.roles", "broker"),
            ("node.id", "4"),
            ("controller.quorum.voters", "1@c1:9093,2@c2:9093,3@c3:9093"),
            ("controller.listener.names", "CONTROLLER"),
            ("listeners", "PLAINTEXT://127.0.0.1:9092"),
        ];
        with_changes(&base, changes)
    }

    #[test]
    fn a_broker_only_node_follows_kafkas_rules() {
        let (c, warnings) = load(&broker_only(&[])).unwrap();
        assert!(c.is_broker() && !c.is_controller());
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.controller_quorum_voters.len(), 3);
        assert_eq!(c.advertised().listener_name, "PLAINTEXT");
        for (changes, key, reason) in [
            (
                vec![("controller.quorum.voters", "")],
                "controller.quorum.voters",
                "parseable set of controllers",
            ),
            (
                vec![("controller.quorum.voters", "1@c1:9093,4@b4:9093")],
                "controller.quorum.voters",
                "the node id 4 must not be included in the set of voters",
            ),
            (
                vec![("controller.listener.names", "")],
                "controller.listener.names",
                "at least one value when running KRaft with just the broker role",
            ),
            (
                vec![(
                    "listeners",
                    "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
                )],
                "controller.listener.names",
                "must not contain a value appearing in the 'listeners'",
            ),
            (
                vec![
                    ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT"),
                    ("controller.listener.names", "CONTROLLER"),
                ],
                "controller.listener.names",
                "listener.security.protocol.map",
            ),
        ] {
            let err = load(&broker_only(&changes)).unwrap_err().to_string();
            assert!(
                err.contains(key) && err.contains(reason),
                "{changes:?}: {err}"
            );
        }
        // Only the first controller listener name is used: said as a warning, as Kafka.
        let (_, warnings) = load(&broker_only(&[(
            "controller.listener.names",
            "CONTROLLER,OTHER",
        )]))
        .unwrap();
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("only the first will be used")),
            "{warnings:?}"
        );
    }

    /// A controller-only node's keys, with `changes` on top.
    fn controller_only(
        changes: &[(&'static str, &'static str)],
    ) -> Vec<(&'static str, &'static str)> {
        let base = [
            ("process.roles", "controller"),
            ("node.id", "1"),
            ("controller.quorum.voters", "1@c1:9093,2@c2:9093,3@c3:9093"),
            ("controller.listener.names", "CONTROLLER"),
            ("listeners", "CONTROLLER://127.0.0.1:9093"),
        ];
        with_changes(&base, changes)
    }

    #[test]
    fn a_controller_only_node_follows_kafkas_rules() {
        let (c, warnings) = load(&controller_only(&[])).unwrap();
        assert!(c.is_controller() && !c.is_broker());
        assert!(warnings.is_empty(), "{warnings:?}");
        // Its only endpoint is its controller listener; it is never registered.
        assert_eq!(c.advertised().listener_name, "CONTROLLER");
        // A single controller is fine, as long as it is named.
        load(&controller_only(&[(
            "controller.quorum.voters",
            "1@c1:9093",
        )]))
        .unwrap();
        for (changes, key, reason) in [
            (
                vec![("controller.quorum.voters", "")],
                "controller.quorum.voters",
                "parseable set of controllers",
            ),
            (
                vec![("node.id", "7")],
                "controller.quorum.voters",
                "has the controller role but is not a voter",
            ),
            (
                vec![(
                    "listeners",
                    "CONTROLLER://127.0.0.1:9093,PLAINTEXT://127.0.0.1:9092",
                )],
                "listeners",
                "must only contain KRaft controller listeners",
            ),
            // Without the name, CONTROLLER is an unknown listener (as in Kafka).
            (
                vec![("controller.listener.names", "")],
                "listeners",
                "no security protocol defined for listener CONTROLLER",
            ),
            (
                vec![("controller.listener.names", "CONTROLLER,OTHER")],
                "controller.listener.names",
                "OTHER is not in listeners",
            ),
            (
                vec![("inter.broker.listener.name", "CONTROLLER")],
                "controller.listener.names",
                "inter.broker.listener.name",
            ),
        ] {
            let err = load(&controller_only(&changes)).unwrap_err().to_string();
            assert!(
                err.contains(key) && err.contains(reason),
                "{changes:?}: {err}"
            );
        }
    }

    #[test]
    fn a_combined_node_binds_every_controller_listener_it_names() {
        let err = load(&[
            ("controller.listener.names", "CONTROLLER,OTHER"),
            (
                "listeners",
                "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
            ),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("controller.listener.names") && err.contains("OTHER is not in listeners"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_warn() {
        let (_, warnings) = load(&[("no.such.key", "1")]).unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("no.such.key"));
    }

    #[test]
    fn properties_file_syntax() {
        let text =
            "# comment\nnode.id=3\nlisteners: PLAINTEXT://localhost:1234\nlog.dirs=/tmp/a,\\\n\n";
        let props = parse_properties(Path::new("x"), text).unwrap();
        assert_eq!(props["node.id"], "3");
        assert_eq!(props["listeners"], "PLAINTEXT://localhost:1234");
        assert!(parse_properties(Path::new("x"), "novalue\n").is_err());
    }

    #[test]
    fn replication_keys_are_checked_as_kafka_checks_them() {
        let (c, _) = load(&[]).unwrap();
        assert_eq!(c.replication, ReplicationConfig::default());
        let (c, _) = load(&[
            ("replica.lag.time.max.ms", "5000"),
            ("num.replica.fetchers", "4"),
            ("replica.selector.class", RACK_AWARE_REPLICA_SELECTOR),
        ])
        .unwrap();
        assert_eq!(c.replication.replica_lag_time_max_ms, 5000);
        assert_eq!(c.replication.num_replica_fetchers, 4);
        assert!(c.replication.rack_aware_replica_selector);
        for (key, value, needle) in [
            (
                "replica.fetch.wait.max.ms",
                "40000",
                "replica.socket.timeout.ms",
            ),
            ("replica.lag.time.max.ms", "100", "replica.lag.time.max.ms"),
            ("num.replica.fetchers", "0", "num.replica.fetchers"),
            (
                "replica.selector.class",
                "com.example.Mine",
                "RackAwareReplicaSelector",
            ),
        ] {
            let err = load(&[(key, value)]).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains(needle), "{key}: {err}");
        }
    }

    #[test]
    fn internal_topic_replication_defaults_follow_the_voters() {
        let (c, warnings) = load(&[]).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(c.effective_offsets_topic_replication_factor(), 1);
        assert_eq!(c.effective_transaction_state_log_replication_factor(), 1);
        assert_eq!(c.effective_transaction_state_log_min_isr(), 1);
        let cluster = |voters: &'static str| {
            vec![
                ("controller.quorum.voters", voters),
                ("controller.listener.names", "CONTROLLER"),
                (
                    "listeners",
                    "CONTROLLER://127.0.0.1:9093,PLAINTEXT://127.0.0.1:9092",
                ),
            ]
        };
        let (c, _) = load(&cluster("1@a:9093,2@b:9093")).unwrap();
        assert_eq!(c.effective_offsets_topic_replication_factor(), 2);
        assert_eq!(c.effective_transaction_state_log_min_isr(), 2);
        let (c, _) = load(&cluster("1@a:1,2@b:1,3@c:1,4@d:1")).unwrap();
        assert_eq!(c.effective_offsets_topic_replication_factor(), 3);
        assert_eq!(c.effective_transaction_state_log_replication_factor(), 3);
        assert_eq!(c.effective_transaction_state_log_min_isr(), 2);
        let described: BTreeMap<String, Option<String>> =
            c.describe().into_iter().map(|(k, v, _)| (k, v)).collect();
        assert_eq!(
            described["offsets.topic.replication.factor"].as_deref(),
            Some("3")
        );
        // Set values are honoured as given, even above the voters (Kafka's creation then
        // waits for that many brokers); min.isr defaults below the set factor.
        let (c, warnings) = load(&[
            ("offsets.topic.replication.factor", "3"),
            ("transaction.state.log.replication.factor", "1"),
        ])
        .unwrap();
        assert!(warnings.is_empty());
        assert_eq!(c.effective_offsets_topic_replication_factor(), 3);
        assert_eq!(c.effective_transaction_state_log_replication_factor(), 1);
        assert_eq!(c.effective_transaction_state_log_min_isr(), 1);
        let (c, _) = load(&[("transaction.state.log.min.isr", "3")]).unwrap();
        assert_eq!(c.effective_transaction_state_log_min_isr(), 3);
        for key in [
            "offsets.topic.replication.factor",
            "transaction.state.log.replication.factor",
            "transaction.state.log.min.isr",
        ] {
            for value in ["0", "-1", "x", "40000000000"] {
                let err = load(&[(key, value)]).unwrap_err().to_string();
                assert!(err.contains(key) && err.contains(value), "{err}");
            }
        }
        assert!(load(&[("offsets.topic.replication.factor", "32768")]).is_err());
    }

    #[test]
    fn leader_balancing_keys_are_validated_as_kafka() {
        let (c, _) = load(&[]).unwrap();
        assert!(c.auto_leader_rebalance_enable);
        assert_eq!(c.leader_imbalance_check_interval_seconds, 300);
        assert_eq!(c.leader_imbalance_per_broker_percentage, 10);
        assert!(!c.unclean_leader_election_enable);
        let (c, _) = load(&[
            ("auto.leader.rebalance.enable", "FALSE"),
            ("leader.imbalance.check.interval.seconds", "1"),
            // An int without bounds in Kafka.
            ("leader.imbalance.per.broker.percentage", "-5"),
            ("unclean.leader.election.enable", "true"),
        ])
        .unwrap();
        assert!(!c.auto_leader_rebalance_enable);
        assert_eq!(c.leader_imbalance_check_interval_seconds, 1);
        assert_eq!(c.leader_imbalance_per_broker_percentage, -5);
        // Both the controller's default and the topic-config default.
        assert!(c.unclean_leader_election_enable);
        assert!(c.log_defaults.unclean_leader_election_enable);
        for (key, value) in [
            ("auto.leader.rebalance.enable", "yes"),
            ("leader.imbalance.check.interval.seconds", "0"),
            ("leader.imbalance.per.broker.percentage", "ten"),
            ("unclean.leader.election.enable", "1"),
        ] {
            let err = load(&[(key, value)]).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains(value), "{err}");
        }
    }
}

#[cfg(test)]
mod readme_tests {
    use super::BROKER_KEYS;

    #[test]
    fn readme_documents_every_broker_key() {
        let readme = include_str!("../../../README.md");
        let missing: Vec<&str> = BROKER_KEYS
            .iter()
            .map(|(key, _, _)| *key)
            .filter(|key| !readme.contains(&format!("`{key}`")))
            .collect();
        assert!(
            missing.is_empty(),
            "README.md does not document {missing:?}"
        );
    }
}
