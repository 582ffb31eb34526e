//! Kafka Connect's REST API without an HTTP server: the JSON entities (Kafka's field names
//! and shapes), Kafka's request validation rules and error answers, and a routing table
//! ([`route`]) from method, path and query to a typed [`Route`]. The server built on this
//! only moves bytes: it calls [`route`], runs the herder operation, and serializes one of
//! these entities (or an [`ErrorMessage`] with its [`ErrorMessage::status`]).
//!
//! Java `HashMap`s (connector configs, `GET /connectors?expand=` answers) are written in
//! Java's iteration order (see [`JavaOrder`]) so that answers match Kafka's byte for byte.
//! The validate endpoint answers [`crate::config::ConfigInfos`] (its `to_json`).

use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::config::Props;
use crate::storage::{java_hash_map_order, State, TargetState};

/// The connector config key holding the connector's name.
pub const NAME_CONFIG: &str = "name";
/// The connector config key holding the connector's class (or alias).
pub const CONNECTOR_CLASS_CONFIG: &str = "connector.class";
/// Kafka's `PluginDesc.UNDEFINED_VERSION`: a [`PluginInfo`] with it has no `version` field.
pub const UNDEFINED_VERSION: &str = "undefined";

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Serializes a string map in the iteration order of a Java `HashMap` filled from it in
/// key order (what Kafka's Jackson writes for a connector or task config).
#[derive(Clone, Copy, Debug)]
pub struct JavaOrder<'a>(pub &'a Props);

impl Serialize for JavaOrder<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entries: Vec<(String, &String)> = self.0.iter().map(|(k, v)| (k.clone(), v)).collect();
        let entries = java_hash_map_order(entries);
        let mut map = serializer.serialize_map(Some(entries.len()))?;
        for (k, v) in entries {
            map.serialize_entry(&k, v)?;
        }
        map.end()
    }
}

fn ser_java_order<S: Serializer>(props: &Props, serializer: S) -> Result<S::Ok, S::Error> {
    JavaOrder(props).serialize(serializer)
}

/// Java's `Map.toString()` of a `HashMap` holding `props`: `{k1=v1, k2=v2}`.
pub fn java_map_to_string(props: &Props) -> String {
    let entries: Vec<(String, &String)> = props.iter().map(|(k, v)| (k.clone(), v)).collect();
    let body: Vec<String> = java_hash_map_order(entries)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!("{{{}}}", body.join(", "))
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

fn is_none_or_empty(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(str::is_empty)
}

fn is_undefined_version(v: &str) -> bool {
    v == UNDEFINED_VERSION
}

fn undefined_version() -> String {
    UNDEFINED_VERSION.to_string()
}

/// Declares a lowercase-serialized enum that Jackson reads case-insensitively
/// (Kafka's `forValue(value.toUpperCase(Locale.ROOT))`).
macro_rules! lowercase_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// The JSON (lowercase) name.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses a name, ignoring case.
            pub fn parse(s: &str) -> Option<$name> {
                let lower = s.to_ascii_lowercase();
                match lower.as_str() { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.name())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<$name, D::Error> {
                let s = String::deserialize(deserializer)?;
                $name::parse(&s).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        concat!("unknown ", stringify!($name), " {}"), s
                    ))
                })
            }
        }
    };
}

lowercase_enum!(
    /// Kafka's `ConnectorType`.
    ConnectorType { Source => "source", Sink => "sink", Unknown => "unknown" }
);

lowercase_enum!(
    /// Kafka's `PluginType` (the `type` of a [`PluginInfo`]).
    PluginType {
        Source => "source",
        Sink => "sink",
        Converter => "converter",
        HeaderConverter => "header_converter",
        Transformation => "transformation",
        Predicate => "predicate",
        ConfigProvider => "configprovider",
        RestExtension => "rest_extension",
        ConnectorClientConfigOverridePolicy => "connector_client_config_override_policy",
    }
);

// ---------------------------------------------------------------------------------------
// Entities
// ---------------------------------------------------------------------------------------

/// `GET /`: Kafka's `ServerInfo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub version: String,
    pub commit: String,
    pub kafka_cluster_id: Option<String>,
}

/// `GET /health`: Kafka's `WorkerStatus` (KIP-1017).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStatus {
    pub status: String,
    pub message: String,
}

impl WorkerStatus {
    /// 200: the worker is ready.
    pub fn healthy() -> WorkerStatus {
        WorkerStatus {
            status: "healthy".into(),
            message: "Worker has completed startup and is ready to handle requests.".into(),
        }
    }

    /// 503: the worker is still starting.
    pub fn starting(details: Option<&str>) -> WorkerStatus {
        WorkerStatus {
            status: "starting".into(),
            message: with_details("Worker is still starting up.", details),
        }
    }

    /// 500: the worker did not answer the health check in time.
    pub fn unhealthy(details: Option<&str>) -> WorkerStatus {
        WorkerStatus {
            status: "unhealthy".into(),
            message: with_details(
                "Worker was unable to handle this request and may be unable to handle other requests.",
                details,
            ),
        }
    }
}

fn with_details(message: &str, details: Option<&str>) -> String {
    match details {
        Some(d) => format!("{message} {d}"),
        None => message.to_string(),
    }
}

/// Kafka's `ConnectorTaskId`: `{"connector":..,"task":..}`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ConnectorTaskId {
    pub connector: String,
    pub task: i32,
}

impl ConnectorTaskId {
    pub fn new(connector: impl Into<String>, task: i32) -> ConnectorTaskId {
        ConnectorTaskId {
            connector: connector.into(),
            task,
        }
    }
}

impl std::fmt::Display for ConnectorTaskId {
    /// Java's `toString`: `connector-task`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.connector, self.task)
    }
}

/// `GET /connectors/{name}` and the answer of create/update: Kafka's `ConnectorInfo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorInfo {
    pub name: String,
    #[serde(serialize_with = "ser_java_order")]
    pub config: Props,
    pub tasks: Vec<ConnectorTaskId>,
    #[serde(rename = "type")]
    pub connector_type: ConnectorType,
}

/// The `connector` object of a [`ConnectorStateInfo`]. `trace` is left out when absent or
/// empty (Jackson's `NON_EMPTY`); Kafka's own reader calls it `msg`, accepted too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorState {
    pub state: String,
    pub worker_id: String,
    #[serde(default, alias = "msg", skip_serializing_if = "is_none_or_empty")]
    pub trace: Option<String>,
    /// The connector plugin's version (KIP-891, Kafka 4.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Not in Kafka: a warning the connector raised (e.g. the database is about to drop
    /// the log it reads); absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

impl ConnectorState {
    pub fn new(state: State, worker_id: impl Into<String>, trace: Option<String>) -> Self {
        ConnectorState {
            state: state.name().to_string(),
            worker_id: worker_id.into(),
            trace,
            version: None,
            warning: None,
        }
    }
}

/// A task of a [`ConnectorStateInfo`], and the answer of `GET .../tasks/{id}/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskState {
    pub id: i32,
    pub state: String,
    pub worker_id: String,
    #[serde(default, alias = "msg", skip_serializing_if = "is_none_or_empty")]
    pub trace: Option<String>,
    /// The task's plugin version (KIP-891, Kafka 4.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Not in Kafka: a warning the task raised; absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// Not in Kafka: automatic restarts so far (`errors.restart.enable`); absent when
    /// automatic restarts are off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u64>,
    /// Not in Kafka: the trace of the last failure, kept after an automatic restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl TaskState {
    pub fn new(id: i32, state: State, worker_id: impl Into<String>, trace: Option<String>) -> Self {
        TaskState {
            id,
            state: state.name().to_string(),
            worker_id: worker_id.into(),
            trace,
            version: None,
            warning: None,
            restarts: None,
            last_error: None,
        }
    }
}

/// `GET /connectors/{name}/status`: Kafka's `ConnectorStateInfo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorStateInfo {
    pub name: String,
    pub connector: ConnectorState,
    pub tasks: Vec<TaskState>,
    #[serde(rename = "type")]
    pub connector_type: ConnectorType,
}

/// An element of `GET /connectors/{name}/tasks`: Kafka's `TaskInfo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskInfo {
    pub id: ConnectorTaskId,
    #[serde(serialize_with = "ser_java_order")]
    pub config: Props,
}

/// `initial_state` of a [`CreateConnectorRequest`] (any case accepted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum InitialState {
    #[serde(alias = "running", alias = "Running")]
    Running,
    #[serde(alias = "paused", alias = "Paused")]
    Paused,
    #[serde(alias = "stopped", alias = "Stopped")]
    Stopped,
}

impl InitialState {
    pub fn to_target_state(self) -> TargetState {
        match self {
            InitialState::Running => TargetState::Started,
            InitialState::Paused => TargetState::Paused,
            InitialState::Stopped => TargetState::Stopped,
        }
    }
}

/// The body of `POST /connectors`: Kafka's `CreateConnectorRequest`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateConnectorRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub config: Option<Props>,
    #[serde(default)]
    pub initial_state: Option<InitialState>,
}

/// One partition and its offset (KIP-875); `offset` null resets the partition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConnectorOffset {
    pub partition: Map<String, Value>,
    pub offset: Option<Map<String, Value>>,
}

/// `GET|PATCH /connectors/{name}/offsets`: Kafka's `ConnectorOffsets`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectorOffsets {
    #[serde(default, deserialize_with = "null_as_default")]
    pub offsets: Vec<ConnectorOffset>,
}

/// `{"message": ...}`: Kafka's `Message` (offsets alter/reset answers).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub message: String,
}

/// `{"error_code": .., "message": ..}`: Kafka's `ErrorMessage`, the body of every error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMessage {
    pub error_code: u16,
    pub message: String,
}

/// An element of `GET /connector-plugins`: Kafka's `PluginInfo`. `version` is left out
/// when it is [`UNDEFINED_VERSION`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    pub class: String,
    #[serde(rename = "type")]
    pub plugin_type: PluginType,
    #[serde(
        default = "undefined_version",
        skip_serializing_if = "is_undefined_version"
    )]
    pub version: String,
}

/// `GET /connector-plugins?connectorsOnly=..`: the plugins to list, in order.
pub fn list_plugins(plugins: &[PluginInfo], connectors_only: bool) -> Vec<PluginInfo> {
    plugins
        .iter()
        .filter(|p| {
            !connectors_only || matches!(p.plugin_type, PluginType::Source | PluginType::Sink)
        })
        .cloned()
        .collect()
}

/// Kafka's `ActiveTopicsInfo`; the answer of `GET /connectors/{name}/topics` is
/// [`ActiveTopicsInfo::response`]: `{"<name>":{"topics":[...]}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveTopicsInfo {
    #[serde(skip)]
    pub connector: String,
    pub topics: Vec<String>,
}

impl ActiveTopicsInfo {
    pub fn response(&self) -> BTreeMap<&str, &ActiveTopicsInfo> {
        BTreeMap::from([(self.connector.as_str(), self)])
    }
}

/// A logger's level (`GET /admin/loggers[/{logger}]`, KIP-976): `last_modified` is null
/// until the level was set through the REST API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggerLevel {
    pub level: String,
    #[serde(default)]
    pub last_modified: Option<i64>,
}

/// `GET /admin/loggers`: logger name to level.
pub type LoggerLevels = BTreeMap<String, LoggerLevel>;

/// One connector of `GET /connectors?expand=..`: the requested expansions in query order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectorExpansions {
    pub status: Option<ConnectorStateInfo>,
    pub info: Option<ConnectorInfo>,
    /// The order the expansions were requested in (Kafka's `HashMap` keeps it: `status`
    /// and `info` share a bucket).
    pub order: Vec<Expansion>,
}

impl Serialize for ConnectorExpansions {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for e in &self.order {
            match e {
                Expansion::Status => {
                    if let Some(s) = &self.status {
                        map.serialize_entry("status", s)?;
                    }
                }
                Expansion::Info => {
                    if let Some(i) = &self.info {
                        map.serialize_entry("info", i)?;
                    }
                }
            }
        }
        map.end()
    }
}

/// The answer of `GET /connectors?expand=..`, in Java `HashMap` order of connector names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpandedConnectors(pub Vec<(String, ConnectorExpansions)>);

impl Serialize for ExpandedConnectors {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entries: Vec<(String, &ConnectorExpansions)> =
            self.0.iter().map(|(k, v)| (k.clone(), v)).collect();
        let mut map = serializer.serialize_map(Some(entries.len()))?;
        for (k, v) in java_hash_map_order(entries) {
            map.serialize_entry(&k, v)?;
        }
        map.end()
    }
}

// ---------------------------------------------------------------------------------------
// Errors (Kafka's messages)
// ---------------------------------------------------------------------------------------

impl ErrorMessage {
    pub fn new(error_code: u16, message: impl Into<String>) -> ErrorMessage {
        ErrorMessage {
            error_code,
            message: message.into(),
        }
    }

    /// The HTTP status to answer with (Kafka's mapper uses the error code).
    pub fn status(&self) -> u16 {
        self.error_code
    }

    pub fn bad_request(message: impl Into<String>) -> ErrorMessage {
        ErrorMessage::new(400, message)
    }

    pub fn not_found(message: impl Into<String>) -> ErrorMessage {
        ErrorMessage::new(404, message)
    }

    /// Jersey's answer for a path no resource matches.
    pub fn http_not_found() -> ErrorMessage {
        ErrorMessage::new(404, "HTTP 404 Not Found")
    }

    /// Jersey's answer for a matched path with an unsupported method.
    pub fn method_not_allowed() -> ErrorMessage {
        ErrorMessage::new(405, "HTTP 405 Method Not Allowed")
    }

    /// 404 `Connector X not found`.
    pub fn connector_not_found(name: &str) -> ErrorMessage {
        ErrorMessage::not_found(format!("Connector {name} not found"))
    }

    /// 404 from the distributed herder's task/connector lookups: `Unknown connector: X`.
    pub fn unknown_connector(name: &str) -> ErrorMessage {
        ErrorMessage::not_found(format!("Unknown connector: {name}"))
    }

    /// 404 of `POST .../tasks/{id}/restart` for a task without config: `Unknown task: X-0`.
    pub fn unknown_task(id: &ConnectorTaskId) -> ErrorMessage {
        ErrorMessage::not_found(format!("Unknown task: {id}"))
    }

    /// 404 of `GET .../tasks/{id}/status`: `No status found for task X-0`.
    pub fn no_task_status(id: &ConnectorTaskId) -> ErrorMessage {
        ErrorMessage::not_found(format!("No status found for task {id}"))
    }

    /// 404 of `GET .../status`: `No status found for connector X`.
    pub fn no_connector_status(name: &str) -> ErrorMessage {
        ErrorMessage::not_found(format!("No status found for connector {name}"))
    }

    /// 409 `Connector X already exists`.
    pub fn already_exists(name: &str) -> ErrorMessage {
        ErrorMessage::new(409, format!("Connector {name} already exists"))
    }

    /// 409 while the herder's config snapshot is stale (a rebalance is needed).
    pub fn stale_config() -> ErrorMessage {
        ErrorMessage::new(
            409,
            "Cannot complete request momentarily due to stale configuration \
             (typically caused by a concurrent config change)",
        )
    }

    /// 409 when a request must go to the leader and no leader is known.
    pub fn no_known_leader() -> ErrorMessage {
        ErrorMessage::new(
            409,
            "Cannot complete request momentarily due to no known leader URL, \
             likely because a rebalance was underway.",
        )
    }

    /// 409 when a forwarded request could not find its target in two hops.
    pub fn conflicting_operation() -> ErrorMessage {
        ErrorMessage::new(
            409,
            "Cannot complete request because of a conflicting operation (e.g. worker rebalance)",
        )
    }

    /// 500 when the herder did not answer within the request timeout.
    pub fn request_timed_out() -> ErrorMessage {
        ErrorMessage::new(500, "Request timed out")
    }

    /// 403 of the topics endpoints when `topic.tracking.enable=false`.
    pub fn topic_tracking_disabled() -> ErrorMessage {
        ErrorMessage::new(403, "Topic tracking is disabled.")
    }

    /// 403 of `PUT .../topics/reset` when `topic.tracking.allow.reset=false`.
    pub fn topic_tracking_reset_disabled() -> ErrorMessage {
        ErrorMessage::new(403, "Topic tracking reset is disabled.")
    }

    /// 404 of `GET /connector-plugins/{plugin}/config` for an unknown plugin.
    pub fn unknown_plugin(plugin: &str) -> ErrorMessage {
        ErrorMessage::not_found(format!("Unknown plugin {plugin}."))
    }

    /// 400 of `GET /connector-plugins/{plugin}/config` for a plugin of another kind.
    pub fn invalid_plugin_class(plugin: &str) -> ErrorMessage {
        ErrorMessage::bad_request(format!(
            "Invalid plugin class {plugin}. Valid types are sink, source, converter, \
             header_converter, transformation, predicate."
        ))
    }

    /// 400 listing config validation errors (Kafka's `maybeAddConfigErrors`).
    pub fn invalid_config(errors: &[String]) -> ErrorMessage {
        let mut message = format!(
            "Connector configuration is invalid and contains the following {} error(s):",
            errors.len()
        );
        for e in errors {
            message.push('\n');
            message.push_str(e);
        }
        message.push_str(
            "\nYou can also find the above list of errors at the endpoint \
             `/connector-plugins/{connectorType}/config/validate`",
        );
        ErrorMessage::bad_request(message)
    }
}

impl std::fmt::Display for ErrorMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.error_code, self.message)
    }
}

impl std::error::Error for ErrorMessage {}

// ---------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------

/// Kafka's `checkAndPutConnectorConfigName`: a `name` in the config must equal the name of
/// the URL (or request); a missing one is set to it.
pub fn check_and_put_connector_name(name: &str, config: &mut Props) -> Result<(), ErrorMessage> {
    match config.get(NAME_CONFIG) {
        Some(included) if included != name => Err(ErrorMessage::bad_request(format!(
            "Connector name configuration ({included}) doesn't match connector name in the URL ({name})"
        ))),
        Some(_) => Ok(()),
        None => {
            config.insert(NAME_CONFIG.to_string(), name.to_string());
            Ok(())
        }
    }
}

/// Kafka's `NonEmptyStringWithoutControlChars` on the `name` config: the validation error
/// (a `ConfigException` message), if any.
pub fn connector_name_error(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some(format!(
            "Invalid value {name} for configuration {NAME_CONFIG}: String may not be empty"
        ));
    }
    // Java's Character.isISOControl: U+0000..U+001F and U+007F..U+009F.
    let illegal: Vec<String> = name
        .chars()
        .filter(|c| c.is_control())
        .map(|c| u32::from(c).to_string())
        .collect();
    if illegal.is_empty() {
        None
    } else {
        Some(format!(
            "Invalid value {name} for configuration {NAME_CONFIG}: String may not contain \
             control sequences but had the following ASCII chars: {}",
            illegal.join(", ")
        ))
    }
}

/// Kafka's `Plugins.connectorClass`: resolves `connector.class` (a class name, its simple
/// name, or its simple name without the `Connector` suffix) among the known connector
/// classes. Kafka answers an unknown or ambiguous class with a plain `ConnectException`
/// (500); Moldau answers 400, naming the class and the classes it has: the request is what
/// is wrong.
pub fn resolve_connector_class<'a>(
    class_or_alias: &str,
    known: &[&'a str],
) -> Result<&'a str, ErrorMessage> {
    let class_or_alias = class_or_alias.trim();
    if let Some(exact) = known.iter().find(|k| **k == class_or_alias) {
        return Ok(exact);
    }
    let matches: Vec<&'a str> = known
        .iter()
        .copied()
        .filter(|k| {
            let simple = k.rsplit(['.', '$']).next().unwrap_or(k);
            simple == class_or_alias || simple == format!("{class_or_alias}Connector")
        })
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(ErrorMessage::bad_request(format!(
            "Failed to find any class that implements Connector and which name matches \
             {class_or_alias}, available connectors are: {}",
            known.join(", ")
        ))),
        _ => Err(ErrorMessage::bad_request(format!(
            "More than one connector matches alias {class_or_alias}. Please use full \
             package and class name instead. Classes found: {}",
            matches.join(", ")
        ))),
    }
}

/// The checks Kafka's herder makes on a connector config before writing it, in Kafka's
/// order: a `connector.class` is present (400), it names a known connector (400), and the
/// `name` is valid (400). Connector-specific validation is the caller's.
pub fn validate_connector_config(
    config: &Props,
    known_classes: &[&str],
) -> Result<(), ErrorMessage> {
    let Some(class) = config.get(CONNECTOR_CLASS_CONFIG) else {
        return Err(ErrorMessage::bad_request(format!(
            "Connector config {} contains no connector type",
            java_map_to_string(config)
        )));
    };
    resolve_connector_class(class, known_classes)?;
    let name = config.get(NAME_CONFIG).map(String::as_str).unwrap_or("");
    match connector_name_error(name) {
        Some(e) => Err(ErrorMessage::invalid_config(&[e])),
        None => Ok(()),
    }
}

/// A connector to create, as validated by [`validate_create`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewConnector {
    pub name: String,
    pub config: Props,
    pub initial_state: Option<TargetState>,
}

/// `POST /connectors`: Kafka's rules. The name is trimmed (missing means empty), must match
/// a `name` in the config, the config must be valid ([`validate_connector_config`]), and no
/// connector of that name may exist (409). Answer 201 with the [`ConnectorInfo`].
pub fn validate_create(
    request: &CreateConnectorRequest,
    known_classes: &[&str],
    exists: impl Fn(&str) -> bool,
) -> Result<NewConnector, ErrorMessage> {
    let name = request.name.as_deref().unwrap_or("").trim().to_string();
    // Kafka fails with a NullPointerException (500) without a config; say why instead.
    let mut config = request
        .config
        .clone()
        .ok_or_else(|| ErrorMessage::bad_request("Connector config must be provided"))?;
    check_and_put_connector_name(&name, &mut config)?;
    validate_connector_config(&config, known_classes)?;
    if exists(&name) {
        return Err(ErrorMessage::already_exists(&name));
    }
    Ok(NewConnector {
        name,
        config,
        initial_state: request.initial_state.map(InitialState::to_target_state),
    })
}

/// `PUT /connectors/{name}/config`: the name check and config validation; the answer is
/// [`put_config_status`] with the [`ConnectorInfo`].
pub fn validate_put_config(
    name: &str,
    mut config: Props,
    known_classes: &[&str],
) -> Result<Props, ErrorMessage> {
    check_and_put_connector_name(name, &mut config)?;
    validate_connector_config(&config, known_classes)?;
    Ok(config)
}

/// 201 when `PUT /connectors/{name}/config` created the connector, else 200.
pub fn put_config_status(existed: bool) -> u16 {
    if existed {
        200
    } else {
        201
    }
}

/// The body of `PATCH /connectors/{name}/config`: a null value removes the key (KIP-477).
pub type ConfigPatch = BTreeMap<String, Option<String>>;

/// `PATCH /connectors/{name}/config`: applies the patch to the current config (404 when the
/// connector is unknown) and validates the result. The name cannot change: a different
/// `name` answers 400 as for `PUT`, a removed one is put back. Answer 200.
pub fn apply_config_patch(
    name: &str,
    current: Option<&Props>,
    patch: &ConfigPatch,
    known_classes: &[&str],
) -> Result<Props, ErrorMessage> {
    let current = current.ok_or_else(|| ErrorMessage::connector_not_found(name))?;
    let mut patched = current.clone();
    for (k, v) in patch {
        match v {
            Some(v) => patched.insert(k.clone(), v.clone()),
            None => patched.remove(k),
        };
    }
    validate_put_config(name, patched, known_classes)
}

/// Offsets can only be altered or reset for a connector whose target state is STOPPED and
/// that has no tasks (400 otherwise).
pub fn check_offsets_modifiable(
    name: &str,
    target_state: TargetState,
    task_count: usize,
) -> Result<(), ErrorMessage> {
    if target_state == TargetState::Stopped && task_count == 0 {
        Ok(())
    } else {
        Err(ErrorMessage::bad_request(format!(
            "Connectors must be in the STOPPED state before their offsets can be modified. \
             This can be done for the specified connector by issuing a 'PUT' request to the \
             '/connectors/{name}/stop' endpoint"
        )))
    }
}

/// The body of `PATCH /connectors/{name}/offsets` must list at least one partition.
pub fn validate_alter_offsets(offsets: &ConnectorOffsets) -> Result<(), ErrorMessage> {
    if offsets.offsets.is_empty() {
        Err(ErrorMessage::bad_request(
            "Partitions / offsets need to be provided for an alter offsets request",
        ))
    } else {
        Ok(())
    }
}

/// `POST /connectors/{name}/restart?includeTasks=..&onlyFailed=..`: Kafka's `RestartRequest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartRequest {
    pub connector: String,
    pub only_failed: bool,
    pub include_tasks: bool,
}

impl RestartRequest {
    /// Both flags false: the pre-KIP-745 behaviour, restart the connector only and answer
    /// 204 without a body.
    pub fn force_restart_connector_only(&self) -> bool {
        !self.only_failed && !self.include_tasks
    }

    pub fn should_restart_connector(&self, state: State) -> bool {
        !self.only_failed || state == State::Failed
    }

    pub fn should_restart_task(&self, state: State) -> bool {
        self.include_tasks && (!self.only_failed || state == State::Failed)
    }

    /// 204 (no body) for a connector-only restart, else 202 with the
    /// [`ConnectorStateInfo`] in which restarted instances are `RESTARTING`.
    pub fn success_status(&self) -> u16 {
        if self.force_restart_connector_only() {
            204
        } else {
            202
        }
    }
}

/// `PUT /connector-plugins/{plugin}/config/validate`: a `connector.class` in the body must
/// name the plugin of the URL (either may be an alias without `Connector`).
pub fn check_validate_plugin(plugin: &str, config: &Props) -> Result<(), ErrorMessage> {
    fn normalized(name: &str) -> &str {
        match name.strip_suffix("Connector") {
            Some(stripped) if !stripped.is_empty() => stripped,
            _ => name,
        }
    }
    match config.get(CONNECTOR_CLASS_CONFIG) {
        Some(included) if !normalized(included).ends_with(normalized(plugin)) => {
            Err(ErrorMessage::bad_request(format!(
                "Included connector type {included} does not match request type {plugin}"
            )))
        }
        _ => Ok(()),
    }
}

/// The scope of `PUT /admin/loggers/{logger}?scope=..`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoggerScope {
    /// This worker only; answers 200 with the affected logger names.
    Worker,
    /// Every worker (through the config topic); answers 204.
    Cluster,
}

impl LoggerScope {
    /// Kafka's reading: `cluster` (any case) or else the worker (the default; unknown
    /// scopes are logged and treated as `worker`).
    pub fn parse(scope: Option<&str>) -> LoggerScope {
        match scope {
            Some(s) if s.eq_ignore_ascii_case("cluster") => LoggerScope::Cluster,
            _ => LoggerScope::Worker,
        }
    }
}

/// The log4j levels Kafka accepts in `PUT /admin/loggers/{logger}`.
pub const LOG_LEVELS: [&str; 8] = [
    "OFF", "FATAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE", "ALL",
];

/// `PUT /admin/loggers/{logger}`: the body must hold a `level` (400) that is a log4j level,
/// any case (404, as Kafka answers). Returns the level as given.
pub fn validate_logger_level(
    body: &BTreeMap<String, Option<String>>,
) -> Result<String, ErrorMessage> {
    let Some(Some(level)) = body.get("level") else {
        return Err(ErrorMessage::bad_request(
            "Desired 'level' parameter was not specified in request.",
        ));
    };
    if LOG_LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level)) {
        Ok(level.clone())
    } else {
        Err(ErrorMessage::not_found(format!(
            "invalid log level '{level}'."
        )))
    }
}

/// 404 of `GET /admin/loggers/{logger}` for a logger without a level.
pub fn logger_not_found(logger: &str) -> ErrorMessage {
    ErrorMessage::not_found(format!("Logger {logger} not found."))
}

// ---------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------

/// An expansion of `GET /connectors?expand=..`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expansion {
    Status,
    Info,
}

/// A REST endpoint with its decoded path and query parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /`: [`ServerInfo`].
    ServerInfo,
    /// `GET /health`: [`WorkerStatus`].
    Health,
    /// `GET /connectors`: the names (`expand` is `None`), or with `?expand=` an
    /// [`ExpandedConnectors`] (unknown expansions ignored, known ones in query order).
    ListConnectors { expand: Option<Vec<Expansion>> },
    /// `POST /connectors`: body [`CreateConnectorRequest`], see [`validate_create`].
    CreateConnector,
    /// `GET /connectors/{name}`: [`ConnectorInfo`].
    GetConnector { name: String },
    /// `DELETE /connectors/{name}`: 204.
    DeleteConnector { name: String },
    /// `GET /connectors/{name}/config`: the config map ([`JavaOrder`]).
    GetConnectorConfig { name: String },
    /// `PUT /connectors/{name}/config`: see [`validate_put_config`].
    PutConnectorConfig { name: String },
    /// `PATCH /connectors/{name}/config`: see [`apply_config_patch`].
    PatchConnectorConfig { name: String },
    /// `GET /connectors/{name}/status`: [`ConnectorStateInfo`].
    ConnectorStatus { name: String },
    /// `GET /connectors/{name}/topics`: [`ActiveTopicsInfo::response`].
    ConnectorTopics { name: String },
    /// `PUT /connectors/{name}/topics/reset`: 202.
    ResetConnectorTopics { name: String },
    /// `POST /connectors/{name}/restart`: see [`RestartRequest`].
    RestartConnector(RestartRequest),
    /// `PUT /connectors/{name}/stop`: 204.
    StopConnector { name: String },
    /// `PUT /connectors/{name}/pause`: 202.
    PauseConnector { name: String },
    /// `PUT /connectors/{name}/resume`: 202.
    ResumeConnector { name: String },
    /// `GET /connectors/{name}/tasks`: a list of [`TaskInfo`].
    TaskConfigs { name: String },
    /// `GET /connectors/{name}/tasks-config` (deprecated): task id (`name-0`) to config.
    TasksConfig { name: String },
    /// `GET /connectors/{name}/tasks/{task}/status`: [`TaskState`].
    TaskStatus { id: ConnectorTaskId },
    /// `POST /connectors/{name}/tasks/{task}/restart`: 204.
    RestartTask { id: ConnectorTaskId },
    /// `GET /connectors/{name}/offsets`: [`ConnectorOffsets`].
    GetOffsets { name: String },
    /// `PATCH /connectors/{name}/offsets`: body [`ConnectorOffsets`], answer [`Message`].
    AlterOffsets { name: String },
    /// `DELETE /connectors/{name}/offsets`: answer [`Message`].
    ResetOffsets { name: String },
    /// `GET /connector-plugins?connectorsOnly=..` (default true): see [`list_plugins`].
    ListPlugins { connectors_only: bool },
    /// `GET /connector-plugins/{plugin}/config`: the plugin's config keys.
    PluginConfig { plugin: String },
    /// `PUT /connector-plugins/{plugin}/config/validate`: `ConfigInfos`.
    ValidateConfig { plugin: String },
    /// `GET /admin/loggers`: [`LoggerLevels`].
    ListLoggers,
    /// `GET /admin/loggers/{logger}`: [`LoggerLevel`].
    GetLogger { logger: String },
    /// `PUT /admin/loggers/{logger}?scope=..`: see [`validate_logger_level`].
    SetLogger { logger: String, scope: LoggerScope },
}

/// Decodes `%XX` escapes (UTF-8; invalid sequences become U+FFFD); with `plus_is_space`,
/// `+` is a space (query strings).
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let hex = |c: u8| (c as char).to_digit(16);
        if b == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if plus_is_space && b == b'+' { b' ' } else { b });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The decoded values of a query parameter, in order (`a=1&a=2`); a key without `=` has
/// the empty value.
pub fn query_values(query: &str, key: &str) -> Vec<String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true) == key).then(|| percent_decode(v, true))
        })
        .collect()
}

/// Jersey's reading of a `Boolean` query parameter: its first value, `true` in any case
/// is true and anything else false; absent means `default`.
pub fn query_bool(query: &str, key: &str, default: bool) -> bool {
    match query_values(query, key).first() {
        Some(v) => v.eq_ignore_ascii_case("true"),
        None => default,
    }
}

/// Maps a request to its endpoint. `path` is the raw (percent-encoded) path, `query` the
/// raw query string without `?`. Path segments are decoded after splitting, so `%2F` is
/// part of a name. One trailing slash is accepted (as Jersey does). `HEAD` is routed like
/// `GET` (the server drops the body). Unknown paths answer Jersey's 404, known paths with
/// another method Jersey's 405.
pub fn route(method: &str, path: &str, query: &str) -> Result<Route, ErrorMessage> {
    let method = if method == "HEAD" { "GET" } else { method };
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    let segments: Vec<String> = if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed
            .split('/')
            .map(|s| percent_decode(s, false))
            .collect()
    };
    if segments.iter().any(String::is_empty) {
        return Err(ErrorMessage::http_not_found());
    }
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let name = |i: usize| seg[i].to_string();
    let task_id = |i: usize| -> Result<ConnectorTaskId, ErrorMessage> {
        let task = seg[i + 2]
            .parse::<i32>()
            .map_err(|_| ErrorMessage::http_not_found())?;
        Ok(ConnectorTaskId::new(name(i), task))
    };
    // (allowed methods, route for the method) per path template.
    let pick = |options: Vec<(&str, Route)>| -> Result<Route, ErrorMessage> {
        options
            .into_iter()
            .find(|(m, _)| *m == method)
            .map(|(_, r)| r)
            .ok_or_else(ErrorMessage::method_not_allowed)
    };
    match seg.as_slice() {
        [] => pick(vec![("GET", Route::ServerInfo)]),
        ["health"] => pick(vec![("GET", Route::Health)]),
        ["connectors"] => {
            let expand = query_has(query, "expand").then(|| {
                let mut order = Vec::new();
                for v in query_values(query, "expand") {
                    let e = match v.as_str() {
                        "status" => Expansion::Status,
                        "info" => Expansion::Info,
                        _ => continue,
                    };
                    if !order.contains(&e) {
                        order.push(e);
                    }
                }
                order
            });
            pick(vec![
                ("GET", Route::ListConnectors { expand }),
                ("POST", Route::CreateConnector),
            ])
        }
        ["connectors", _] => pick(vec![
            ("GET", Route::GetConnector { name: name(1) }),
            ("DELETE", Route::DeleteConnector { name: name(1) }),
        ]),
        ["connectors", _, "config"] => pick(vec![
            ("GET", Route::GetConnectorConfig { name: name(1) }),
            ("PUT", Route::PutConnectorConfig { name: name(1) }),
            ("PATCH", Route::PatchConnectorConfig { name: name(1) }),
        ]),
        ["connectors", _, "status"] => {
            pick(vec![("GET", Route::ConnectorStatus { name: name(1) })])
        }
        ["connectors", _, "topics"] => {
            pick(vec![("GET", Route::ConnectorTopics { name: name(1) })])
        }
        ["connectors", _, "topics", "reset"] => {
            pick(vec![("PUT", Route::ResetConnectorTopics { name: name(1) })])
        }
        ["connectors", _, "restart"] => pick(vec![(
            "POST",
            Route::RestartConnector(RestartRequest {
                connector: name(1),
                only_failed: query_bool(query, "onlyFailed", false),
                include_tasks: query_bool(query, "includeTasks", false),
            }),
        )]),
        ["connectors", _, "stop"] => pick(vec![("PUT", Route::StopConnector { name: name(1) })]),
        ["connectors", _, "pause"] => pick(vec![("PUT", Route::PauseConnector { name: name(1) })]),
        ["connectors", _, "resume"] => {
            pick(vec![("PUT", Route::ResumeConnector { name: name(1) })])
        }
        ["connectors", _, "tasks"] => pick(vec![("GET", Route::TaskConfigs { name: name(1) })]),
        ["connectors", _, "tasks-config"] => {
            pick(vec![("GET", Route::TasksConfig { name: name(1) })])
        }
        ["connectors", _, "tasks", _, "status"] => {
            let id = task_id(1)?;
            pick(vec![("GET", Route::TaskStatus { id })])
        }
        ["connectors", _, "tasks", _, "restart"] => {
            let id = task_id(1)?;
            pick(vec![("POST", Route::RestartTask { id })])
        }
        ["connectors", _, "offsets"] => pick(vec![
            ("GET", Route::GetOffsets { name: name(1) }),
            ("PATCH", Route::AlterOffsets { name: name(1) }),
            ("DELETE", Route::ResetOffsets { name: name(1) }),
        ]),
        ["connector-plugins"] => pick(vec![(
            "GET",
            Route::ListPlugins {
                connectors_only: query_bool(query, "connectorsOnly", true),
            },
        )]),
        ["connector-plugins", _, "config"] => {
            pick(vec![("GET", Route::PluginConfig { plugin: name(1) })])
        }
        ["connector-plugins", _, "config", "validate"] => {
            pick(vec![("PUT", Route::ValidateConfig { plugin: name(1) })])
        }
        ["admin", "loggers"] => pick(vec![("GET", Route::ListLoggers)]),
        ["admin", "loggers", _] => pick(vec![
            ("GET", Route::GetLogger { logger: name(2) }),
            (
                "PUT",
                Route::SetLogger {
                    logger: name(2),
                    scope: LoggerScope::parse(
                        query_values(query, "scope").first().map(String::as_str),
                    ),
                },
            ),
        ]),
        _ => Err(ErrorMessage::http_not_found()),
    }
}

fn query_has(query: &str, key: &str) -> bool {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .any(|p| percent_decode(p.split_once('=').map_or(p, |(k, _)| k), true) == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Props {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn json<T: Serialize>(v: &T) -> String {
        serde_json::to_string(v).unwrap()
    }

    const FILE_SOURCE: &str = "org.apache.kafka.connect.file.FileStreamSourceConnector";
    const FILE_SINK: &str = "org.apache.kafka.connect.file.FileStreamSinkConnector";
    const KNOWN: &[&str] = &[FILE_SINK, FILE_SOURCE];

    fn name(n: &str) -> String {
        n.to_string()
    }

    #[test]
    fn rest_routes_every_endpoint() {
        let ok = |m: &str, p: &str, q: &str| route(m, p, q).unwrap();
        assert_eq!(ok("GET", "/", ""), Route::ServerInfo);
        assert_eq!(ok("GET", "", ""), Route::ServerInfo);
        assert_eq!(ok("GET", "/health", ""), Route::Health);
        assert_eq!(
            ok("GET", "/connectors", ""),
            Route::ListConnectors { expand: None }
        );
        assert_eq!(
            ok(
                "GET",
                "/connectors",
                "expand=info&expand=status&expand=info"
            ),
            Route::ListConnectors {
                expand: Some(vec![Expansion::Info, Expansion::Status])
            }
        );
        assert_eq!(
            ok("GET", "/connectors", "expand=foo"),
            Route::ListConnectors {
                expand: Some(vec![])
            }
        );
        assert_eq!(ok("POST", "/connectors", ""), Route::CreateConnector);
        assert_eq!(ok("POST", "/connectors/", ""), Route::CreateConnector);
        let n = || name("my conn/x");
        let p = "/connectors/my%20conn%2Fx";
        assert_eq!(ok("GET", p, ""), Route::GetConnector { name: n() });
        assert_eq!(ok("DELETE", p, ""), Route::DeleteConnector { name: n() });
        let c = format!("{p}/config");
        assert_eq!(ok("GET", &c, ""), Route::GetConnectorConfig { name: n() });
        assert_eq!(ok("PUT", &c, ""), Route::PutConnectorConfig { name: n() });
        assert_eq!(
            ok("PATCH", &c, ""),
            Route::PatchConnectorConfig { name: n() }
        );
        let r = |suffix: &str| format!("/connectors/a{suffix}");
        let a = || name("a");
        assert_eq!(
            ok("GET", &r("/status"), ""),
            Route::ConnectorStatus { name: a() }
        );
        assert_eq!(
            ok("GET", &r("/topics"), ""),
            Route::ConnectorTopics { name: a() }
        );
        assert_eq!(
            ok("PUT", &r("/topics/reset"), ""),
            Route::ResetConnectorTopics { name: a() }
        );
        assert_eq!(
            ok("POST", &r("/restart"), ""),
            Route::RestartConnector(RestartRequest {
                connector: a(),
                only_failed: false,
                include_tasks: false
            })
        );
        assert_eq!(
            ok("POST", &r("/restart"), "includeTasks=TRUE&onlyFailed=true"),
            Route::RestartConnector(RestartRequest {
                connector: a(),
                only_failed: true,
                include_tasks: true
            })
        );
        assert_eq!(
            ok("PUT", &r("/stop"), ""),
            Route::StopConnector { name: a() }
        );
        assert_eq!(
            ok("PUT", &r("/pause"), ""),
            Route::PauseConnector { name: a() }
        );
        assert_eq!(
            ok("PUT", &r("/resume"), ""),
            Route::ResumeConnector { name: a() }
        );
        assert_eq!(
            ok("GET", &r("/tasks"), ""),
            Route::TaskConfigs { name: a() }
        );
        assert_eq!(
            ok("GET", &r("/tasks-config"), ""),
            Route::TasksConfig { name: a() }
        );
        assert_eq!(
            ok("GET", &r("/tasks/3/status"), ""),
            Route::TaskStatus {
                id: ConnectorTaskId::new("a", 3)
            }
        );
        assert_eq!(
            ok("POST", &r("/tasks/0/restart"), ""),
            Route::RestartTask {
                id: ConnectorTaskId::new("a", 0)
            }
        );
        assert_eq!(
            ok("GET", &r("/offsets"), ""),
            Route::GetOffsets { name: a() }
        );
        assert_eq!(
            ok("PATCH", &r("/offsets"), ""),
            Route::AlterOffsets { name: a() }
        );
        assert_eq!(
            ok("DELETE", &r("/offsets"), ""),
            Route::ResetOffsets { name: a() }
        );
        assert_eq!(
            ok("GET", "/connector-plugins", ""),
            Route::ListPlugins {
                connectors_only: true
            }
        );
        assert_eq!(
            ok("GET", "/connector-plugins", "connectorsOnly=false"),
            Route::ListPlugins {
                connectors_only: false
            }
        );
        assert_eq!(
            ok("GET", "/connector-plugins/FileStreamSource/config", ""),
            Route::PluginConfig {
                plugin: name("FileStreamSource")
            }
        );
        assert_eq!(
            ok(
                "PUT",
                "/connector-plugins/FileStreamSource/config/validate",
                ""
            ),
            Route::ValidateConfig {
                plugin: name("FileStreamSource")
            }
        );
        assert_eq!(ok("GET", "/admin/loggers", ""), Route::ListLoggers);
        assert_eq!(
            ok("GET", "/admin/loggers/org.apache.kafka", ""),
            Route::GetLogger {
                logger: name("org.apache.kafka")
            }
        );
        assert_eq!(
            ok("PUT", "/admin/loggers/root", ""),
            Route::SetLogger {
                logger: name("root"),
                scope: LoggerScope::Worker
            }
        );
        assert_eq!(
            ok("PUT", "/admin/loggers/root", "scope=Cluster"),
            Route::SetLogger {
                logger: name("root"),
                scope: LoggerScope::Cluster
            }
        );
        assert_eq!(
            ok("HEAD", "/connectors", ""),
            Route::ListConnectors { expand: None }
        );
    }

    #[test]
    fn rest_route_errors_are_jerseys() {
        let not_found = r#"{"error_code":404,"message":"HTTP 404 Not Found"}"#;
        let not_allowed = r#"{"error_code":405,"message":"HTTP 405 Method Not Allowed"}"#;
        for (m, p) in [
            ("GET", "/nope"),
            ("GET", "/connectors/a/b"),
            ("GET", "/connectors//config"),
            ("GET", "/connectors/a/tasks/x/status"),
            ("POST", "/connectors/a/tasks/1.5/restart"),
            ("GET", "/admin/loggers/a/b"),
        ] {
            let e = route(m, p, "").unwrap_err();
            assert_eq!(json(&e), not_found, "{m} {p}");
            assert_eq!(e.status(), 404);
        }
        for (m, p) in [
            ("DELETE", "/"),
            ("PUT", "/connectors"),
            ("POST", "/connectors/a"),
            ("DELETE", "/connectors/a/config"),
            ("GET", "/connectors/a/restart"),
            ("POST", "/connectors/a/pause"),
            ("GET", "/connectors/a/topics/reset"),
            ("PUT", "/connectors/a/offsets"),
            ("GET", "/connectors/a/tasks/0/restart"),
            ("POST", "/connector-plugins"),
            ("GET", "/connector-plugins/X/config/validate"),
            ("DELETE", "/admin/loggers/x"),
            ("PUT", "/admin/loggers"),
        ] {
            let e = route(m, p, "").unwrap_err();
            assert_eq!(json(&e), not_allowed, "{m} {p}");
        }
    }

    #[test]
    fn rest_query_and_decoding() {
        assert_eq!(percent_decode("a%20b+c%2f%zz%", false), "a b+c/%zz%");
        assert_eq!(percent_decode("a+b%C3%A9", true), "a bé");
        assert_eq!(query_values("a=1&b&a=x+y", "a"), ["1", "x y"]);
        assert_eq!(query_values("a=1&b&a=x+y", "b"), [""]);
        assert!(!query_bool("includeTasks=yes", "includeTasks", true));
        assert!(query_bool("", "includeTasks", true));
    }

    #[test]
    fn rest_server_info_and_health_json() {
        let info = ServerInfo {
            version: "4.1.0".into(),
            commit: "0123456789abcdef".into(),
            kafka_cluster_id: Some("I4ZmrWqfT2e-upky_4fdPA".into()),
        };
        assert_eq!(
            json(&info),
            r#"{"version":"4.1.0","commit":"0123456789abcdef","kafka_cluster_id":"I4ZmrWqfT2e-upky_4fdPA"}"#
        );
        assert_eq!(
            json(&WorkerStatus::healthy()),
            r#"{"status":"healthy","message":"Worker has completed startup and is ready to handle requests."}"#
        );
        assert_eq!(
            WorkerStatus::starting(Some("x")).message,
            "Worker is still starting up. x"
        );
    }

    #[test]
    fn rest_status_json_matches_kafka_docs() {
        // docs/connect.html, `GET /connectors/file-source/status` (Kafka 4 adds `type`).
        let status = ConnectorStateInfo {
            name: "file-source".into(),
            connector: ConnectorState::new(State::Running, "192.168.1.208:8083", None),
            tasks: vec![TaskState::new(
                0,
                State::Running,
                "192.168.1.209:8083",
                Some(String::new()),
            )],
            connector_type: ConnectorType::Source,
        };
        let expected = r#"{"name":"file-source","connector":{"state":"RUNNING","worker_id":"192.168.1.208:8083"},"tasks":[{"id":0,"state":"RUNNING","worker_id":"192.168.1.209:8083"}],"type":"source"}"#;
        assert_eq!(json(&status), expected);
        let back: ConnectorStateInfo = serde_json::from_str(expected).unwrap();
        assert_eq!(back.connector, status.connector);
        let failed = TaskState::new(1, State::Failed, "w:8083", Some("trace".into()));
        assert_eq!(
            json(&failed),
            r#"{"id":1,"state":"FAILED","worker_id":"w:8083","trace":"trace"}"#
        );
        let read: TaskState =
            serde_json::from_str(r#"{"id":1,"state":"FAILED","worker_id":"w:8083","msg":"trace"}"#)
                .unwrap();
        assert_eq!(read, failed);
    }

    #[test]
    fn rest_connector_and_task_info_json() {
        let config = props(&[
            ("connector.class", "FileStreamSource"),
            ("file", "test.txt"),
            ("name", "local-file-source"),
            ("tasks.max", "1"),
            ("topic", "connect-test"),
        ]);
        let info = ConnectorInfo {
            name: "local-file-source".into(),
            config: config.clone(),
            tasks: vec![ConnectorTaskId::new("local-file-source", 0)],
            connector_type: ConnectorType::Source,
        };
        // Java HashMap order of these keys.
        let cfg = r#"{"connector.class":"FileStreamSource","file":"test.txt","tasks.max":"1","name":"local-file-source","topic":"connect-test"}"#;
        assert_eq!(json(&JavaOrder(&config)), cfg);
        assert_eq!(
            json(&info),
            format!(
                r#"{{"name":"local-file-source","config":{cfg},"tasks":[{{"connector":"local-file-source","task":0}}],"type":"source"}}"#
            )
        );
        let back: ConnectorInfo = serde_json::from_str(&json(&info)).unwrap();
        assert_eq!(back, info);
        let task = TaskInfo {
            id: ConnectorTaskId::new("local-file-source", 0),
            config: props(&[("task.class", "X")]),
        };
        assert_eq!(
            json(&task),
            r#"{"id":{"connector":"local-file-source","task":0},"config":{"task.class":"X"}}"#
        );
        assert_eq!(
            java_map_to_string(&props(&[("tasks.max", "1"), ("name", "a")])),
            "{tasks.max=1, name=a}"
        );
    }

    #[test]
    fn rest_create_request_json() {
        let req: CreateConnectorRequest = serde_json::from_str(
            r#"{"name":"a","config":{"connector.class":"FileStreamSource"},"initial_state":"stopped"}"#,
        )
        .unwrap();
        assert_eq!(req.initial_state, Some(InitialState::Stopped));
        assert_eq!(
            json(&req),
            r#"{"name":"a","config":{"connector.class":"FileStreamSource"},"initial_state":"STOPPED"}"#
        );
        let bare: CreateConnectorRequest = serde_json::from_str(r#"{"config":{}}"#).unwrap();
        assert_eq!(bare.name, None);
        assert!(
            serde_json::from_str::<CreateConnectorRequest>(r#"{"initial_state":"GONE"}"#).is_err()
        );
    }

    #[test]
    fn rest_offsets_json_matches_kafka_docs() {
        let source = "{\n  \"offsets\": [\n    {\n      \"partition\": {\n        \"filename\": \"test.txt\"\n      },\n      \"offset\": {\n        \"position\": 30\n      }\n    }\n  ]\n}";
        let parsed: ConnectorOffsets = serde_json::from_str(source).unwrap();
        assert_eq!(serde_json::to_string_pretty(&parsed).unwrap(), source);
        let sink = r#"{"offsets":[{"partition":{"kafka_topic":"test","kafka_partition":0},"offset":{"kafka_offset":5}},{"partition":{"kafka_topic":"test","kafka_partition":1},"offset":null}]}"#;
        let parsed: ConnectorOffsets = serde_json::from_str(sink).unwrap();
        assert_eq!(parsed.offsets.len(), 2);
        assert_eq!(parsed.offsets[1].offset, None);
        assert_eq!(
            serde_json::to_value(&parsed).unwrap(),
            serde_json::from_str::<Value>(sink).unwrap()
        );
        for empty in [r#"{}"#, r#"{"offsets":null}"#, r#"{"offsets":[]}"#] {
            let o: ConnectorOffsets = serde_json::from_str(empty).unwrap();
            assert_eq!(
                json(&validate_alter_offsets(&o).unwrap_err()),
                r#"{"error_code":400,"message":"Partitions / offsets need to be provided for an alter offsets request"}"#
            );
        }
        assert!(validate_alter_offsets(&parsed).is_ok());
    }

    #[test]
    fn rest_small_entities_json() {
        assert_eq!(
            json(&Message {
                message: "The offsets for this connector have been reset successfully".into()
            }),
            r#"{"message":"The offsets for this connector have been reset successfully"}"#
        );
        let plugins = vec![
            PluginInfo {
                class: FILE_SINK.into(),
                plugin_type: PluginType::Sink,
                version: "4.1.0".into(),
            },
            PluginInfo {
                class: "org.apache.kafka.connect.transforms.Filter".into(),
                plugin_type: PluginType::Transformation,
                version: UNDEFINED_VERSION.into(),
            },
        ];
        assert_eq!(
            json(&plugins),
            format!(
                r#"[{{"class":"{FILE_SINK}","type":"sink","version":"4.1.0"}},{{"class":"org.apache.kafka.connect.transforms.Filter","type":"transformation"}}]"#
            )
        );
        assert_eq!(list_plugins(&plugins, true).len(), 1);
        assert_eq!(list_plugins(&plugins, false).len(), 2);
        let back: PluginInfo =
            serde_json::from_str(r#"{"class":"X","type":"header_converter"}"#).unwrap();
        assert_eq!(back.version, UNDEFINED_VERSION);
        assert_eq!(back.plugin_type, PluginType::HeaderConverter);
        let topics = ActiveTopicsInfo {
            connector: "some-source".into(),
            topics: vec!["foo".into(), "bar".into()],
        };
        assert_eq!(
            json(&topics.response()),
            r#"{"some-source":{"topics":["foo","bar"]}}"#
        );
        let mut levels = LoggerLevels::new();
        levels.insert(
            "org.apache.kafka.connect".into(),
            LoggerLevel {
                level: "WARN".into(),
                last_modified: Some(1_634_567_890),
            },
        );
        levels.insert(
            "root".into(),
            LoggerLevel {
                level: "INFO".into(),
                last_modified: None,
            },
        );
        assert_eq!(
            json(&levels),
            r#"{"org.apache.kafka.connect":{"level":"WARN","last_modified":1634567890},"root":{"level":"INFO","last_modified":null}}"#
        );
    }

    #[test]
    fn rest_expanded_connectors_json() {
        let status = ConnectorStateInfo {
            name: "a".into(),
            connector: ConnectorState::new(State::Paused, "w", None),
            tasks: vec![],
            connector_type: ConnectorType::Sink,
        };
        let info = ConnectorInfo {
            name: "a".into(),
            config: props(&[("name", "a")]),
            tasks: vec![],
            connector_type: ConnectorType::Sink,
        };
        let out = ExpandedConnectors(vec![(
            "a".into(),
            ConnectorExpansions {
                status: Some(status),
                info: Some(info),
                order: vec![Expansion::Info, Expansion::Status],
            },
        )]);
        assert_eq!(
            json(&out),
            r#"{"a":{"info":{"name":"a","config":{"name":"a"},"tasks":[],"type":"sink"},"status":{"name":"a","connector":{"state":"PAUSED","worker_id":"w"},"tasks":[],"type":"sink"}}}"#
        );
        let empty = ExpandedConnectors(vec![(
            "b".into(),
            ConnectorExpansions {
                status: None,
                info: None,
                order: vec![],
            },
        )]);
        assert_eq!(json(&empty), r#"{"b":{}}"#);
    }

    fn create(name: Option<&str>, config: &[(&str, &str)]) -> CreateConnectorRequest {
        CreateConnectorRequest {
            name: name.map(str::to_string),
            config: Some(props(config)),
            initial_state: None,
        }
    }

    fn msg(r: Result<impl std::fmt::Debug, ErrorMessage>) -> (u16, String) {
        let e = r.unwrap_err();
        (e.error_code, e.message)
    }

    #[test]
    fn rest_create_validation() {
        let none = |_: &str| false;
        let ok = validate_create(
            &CreateConnectorRequest {
                initial_state: Some(InitialState::Paused),
                ..create(Some("  a "), &[("connector.class", "FileStreamSource")])
            },
            KNOWN,
            none,
        )
        .unwrap();
        assert_eq!(ok.name, "a");
        assert_eq!(ok.config.get("name").unwrap(), "a");
        assert_eq!(ok.initial_state, Some(TargetState::Paused));
        let suffix = "\nYou can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`";
        assert_eq!(
            msg(validate_create(&create(None, &[("connector.class", FILE_SINK)]), KNOWN, none)),
            (
                400,
                format!("Connector configuration is invalid and contains the following 1 error(s):\nInvalid value  for configuration name: String may not be empty{suffix}")
            )
        );
        assert_eq!(
            msg(validate_create(
                &create(Some(" "), &[("connector.class", FILE_SINK)]),
                KNOWN,
                none
            ))
            .0,
            400
        );
        assert_eq!(
            msg(validate_create(
                &create(Some("a\tb\u{7f}"), &[("connector.class", FILE_SINK)]),
                KNOWN,
                none
            )),
            (
                400,
                format!("Connector configuration is invalid and contains the following 1 error(s):\nInvalid value a\tb\u{7f} for configuration name: String may not contain control sequences but had the following ASCII chars: 9, 127{suffix}")
            )
        );
        assert_eq!(
            msg(validate_create(
                &create(Some("a"), &[("connector.class", FILE_SINK), ("name", "b")]),
                KNOWN,
                none
            )),
            (
                400,
                "Connector name configuration (b) doesn't match connector name in the URL (a)"
                    .into()
            )
        );
        assert_eq!(
            msg(validate_create(
                &create(Some("a"), &[("tasks.max", "1")]),
                KNOWN,
                none
            )),
            (
                400,
                "Connector config {tasks.max=1, name=a} contains no connector type".into()
            )
        );
        assert_eq!(
            msg(validate_create(&create(Some("a"), &[("connector.class", "Nope")]), KNOWN, none)),
            (
                400,
                format!("Failed to find any class that implements Connector and which name matches Nope, available connectors are: {FILE_SINK}, {FILE_SOURCE}")
            )
        );
        assert_eq!(
            msg(validate_create(
                &create(Some("a"), &[("connector.class", "FileStreamSink")]),
                KNOWN,
                |n| n == "a"
            )),
            (409, "Connector a already exists".into())
        );
        assert_eq!(
            msg(validate_create(
                &CreateConnectorRequest {
                    name: Some("a".into()),
                    config: None,
                    initial_state: None
                },
                KNOWN,
                none
            ))
            .0,
            400
        );
    }

    #[test]
    fn rest_connector_class_resolution() {
        assert_eq!(
            resolve_connector_class(FILE_SINK, KNOWN).unwrap(),
            FILE_SINK
        );
        assert_eq!(
            resolve_connector_class("FileStreamSinkConnector", KNOWN).unwrap(),
            FILE_SINK
        );
        assert_eq!(
            resolve_connector_class("FileStreamSource", KNOWN).unwrap(),
            FILE_SOURCE
        );
        let dup = ["a.XConnector", "b.XConnector"];
        assert_eq!(
            msg(resolve_connector_class("X", &dup)),
            (
                400,
                "More than one connector matches alias X. Please use full package and class name instead. Classes found: a.XConnector, b.XConnector".into()
            )
        );
    }

    #[test]
    fn rest_put_and_patch_validation() {
        let cfg = props(&[("connector.class", FILE_SINK), ("topics", "t")]);
        let put = validate_put_config("a", cfg.clone(), KNOWN).unwrap();
        assert_eq!(put.get("name").unwrap(), "a");
        assert_eq!(
            msg(validate_put_config(
                "a",
                props(&[("connector.class", FILE_SINK), ("name", "b")]),
                KNOWN
            )),
            (
                400,
                "Connector name configuration (b) doesn't match connector name in the URL (a)"
                    .into()
            )
        );
        assert_eq!(
            (put_config_status(false), put_config_status(true)),
            (201, 200)
        );

        let mut patch = ConfigPatch::new();
        patch.insert("topics".into(), None);
        patch.insert("tasks.max".into(), Some("3".into()));
        let patched = apply_config_patch("a", Some(&put), &patch, KNOWN).unwrap();
        assert_eq!(
            patched,
            props(&[
                ("connector.class", FILE_SINK),
                ("name", "a"),
                ("tasks.max", "3")
            ])
        );
        assert_eq!(
            msg(apply_config_patch("x", None, &patch, KNOWN)),
            (404, "Connector x not found".into())
        );
        let rename = ConfigPatch::from([("name".to_string(), Some("b".to_string()))]);
        assert_eq!(
            msg(apply_config_patch("a", Some(&put), &rename, KNOWN)).0,
            400
        );
        let unname = ConfigPatch::from([("name".to_string(), None)]);
        assert_eq!(
            apply_config_patch("a", Some(&put), &unname, KNOWN)
                .unwrap()
                .get("name")
                .unwrap(),
            "a"
        );
        let patch_json: ConfigPatch =
            serde_json::from_str(r#"{"topics":null,"tasks.max":"2"}"#).unwrap();
        assert_eq!(patch_json.get("topics"), Some(&None));
    }

    #[test]
    fn rest_offsets_preconditions() {
        assert!(check_offsets_modifiable("a", TargetState::Stopped, 0).is_ok());
        let expected = (
            400,
            "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/a/stop' endpoint".to_string(),
        );
        assert_eq!(
            msg(check_offsets_modifiable("a", TargetState::Started, 0)),
            expected
        );
        assert_eq!(
            msg(check_offsets_modifiable("a", TargetState::Paused, 0)),
            expected
        );
        assert_eq!(
            msg(check_offsets_modifiable("a", TargetState::Stopped, 2)),
            expected
        );
    }

    #[test]
    fn rest_restart_semantics() {
        let req = |only_failed, include_tasks| RestartRequest {
            connector: "a".into(),
            only_failed,
            include_tasks,
        };
        assert_eq!(req(false, false).success_status(), 204);
        assert_eq!(req(true, false).success_status(), 202);
        assert_eq!(req(false, true).success_status(), 202);
        assert!(req(false, false).should_restart_connector(State::Running));
        assert!(!req(false, false).should_restart_task(State::Failed));
        assert!(!req(true, true).should_restart_connector(State::Running));
        assert!(req(true, true).should_restart_task(State::Failed));
        assert!(!req(true, true).should_restart_task(State::Running));
        assert!(req(false, true).should_restart_task(State::Running));
    }

    #[test]
    fn rest_error_messages() {
        let id = ConnectorTaskId::new("a", 7);
        let cases = [
            (ErrorMessage::connector_not_found("a"), 404, "Connector a not found"),
            (ErrorMessage::unknown_connector("a"), 404, "Unknown connector: a"),
            (ErrorMessage::unknown_task(&id), 404, "Unknown task: a-7"),
            (ErrorMessage::no_task_status(&id), 404, "No status found for task a-7"),
            (ErrorMessage::no_connector_status("a"), 404, "No status found for connector a"),
            (ErrorMessage::already_exists("a"), 409, "Connector a already exists"),
            (
                ErrorMessage::stale_config(),
                409,
                "Cannot complete request momentarily due to stale configuration (typically caused by a concurrent config change)",
            ),
            (
                ErrorMessage::no_known_leader(),
                409,
                "Cannot complete request momentarily due to no known leader URL, likely because a rebalance was underway.",
            ),
            (
                ErrorMessage::conflicting_operation(),
                409,
                "Cannot complete request because of a conflicting operation (e.g. worker rebalance)",
            ),
            (ErrorMessage::topic_tracking_disabled(), 403, "Topic tracking is disabled."),
            (ErrorMessage::topic_tracking_reset_disabled(), 403, "Topic tracking reset is disabled."),
            (ErrorMessage::unknown_plugin("X"), 404, "Unknown plugin X."),
            (ErrorMessage::request_timed_out(), 500, "Request timed out"),
            (logger_not_found("x"), 404, "Logger x not found."),
        ];
        for (e, code, text) in cases {
            assert_eq!((e.status(), e.message.as_str()), (code, text));
        }
        assert_eq!(
            json(&ErrorMessage::already_exists("a")),
            r#"{"error_code":409,"message":"Connector a already exists"}"#
        );
    }

    #[test]
    fn rest_plugin_and_logger_validation() {
        let cfg = props(&[("connector.class", FILE_SINK)]);
        assert!(check_validate_plugin("FileStreamSinkConnector", &cfg).is_ok());
        assert!(check_validate_plugin("FileStreamSink", &cfg).is_ok());
        assert!(check_validate_plugin("anything", &Props::new()).is_ok());
        assert_eq!(
            msg(check_validate_plugin("FileStreamSource", &cfg)),
            (
                400,
                format!("Included connector type {FILE_SINK} does not match request type FileStreamSource")
            )
        );
        let body = |l: Option<&str>| BTreeMap::from([("level".to_string(), l.map(str::to_string))]);
        assert_eq!(
            validate_logger_level(&body(Some("debug"))).unwrap(),
            "debug"
        );
        assert_eq!(
            msg(validate_logger_level(&BTreeMap::new())),
            (
                400,
                "Desired 'level' parameter was not specified in request.".into()
            )
        );
        assert_eq!(msg(validate_logger_level(&body(None))).0, 400);
        assert_eq!(
            msg(validate_logger_level(&body(Some("LOUD")))),
            (404, "invalid log level 'LOUD'.".into())
        );
        assert_eq!(LoggerScope::parse(Some("bogus")), LoggerScope::Worker);
        assert_eq!(LoggerScope::parse(None), LoggerScope::Worker);
    }
}
