//! Moldau's own small Kafka protocol client, for the requests librdkafka has no API for:
//! the admin requests of the `moldau` tools (ListTransactions, DescribeTransactions,
//! DescribeProducers, WriteTxnMarkers, AlterPartitionReassignments,
//! ListPartitionReassignments, ...) and, for the Connect runtime, Kafka's group protocol
//! with protocol type `connect` (JoinGroup, SyncGroup, Heartbeat).
//!
//! Requests and responses are `kafka-protocol`'s messages, encoded and decoded by that
//! crate, never hand-written codecs; this crate only frames them (4-byte length prefix,
//! request and response headers), negotiates versions with ApiVersions, and finds brokers,
//! partition leaders and coordinators ([`Connection`], [`Cluster`]). Every connect and
//! every round trip is bounded by the request timeout, and retries of retriable errors by
//! a deadline of the same length ([`retrying`]), so that nothing hangs. Connections are
//! TLS (rustls) and authenticate with SASL PLAIN or SCRAM as [`WireSecurity`] says, right
//! after ApiVersions ([`security`]).
//!
//! Errors are [`WireError`] (a request that got no usable answer) and
//! [`security::ConfigError`] (client properties that make no [`WireSecurity`]).

pub mod security;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FindCoordinatorRequest, MetadataRequest,
    MetadataResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{
    Decodable, Encodable, HeaderVersion, Message, Request, StrBytes, VersionRange,
};
use kafka_protocol::ResponseError;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::rustls::pki_types::ServerName;

pub use security::{ConfigError, Properties, SaslLogin, SaslMechanism, WireSecurity};

/// Larger answers are refused: the peer may not be a Kafka broker at all, and a length
/// read from the wire must not decide how much we allocate.
const MAX_RESPONSE_BYTES: usize = 100 * 1024 * 1024;
/// Pause between two tries of a request that failed with a retriable error.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// Why a request did not get a usable answer.
#[derive(Debug)]
pub enum WireError {
    /// The broker could not be reached (refused, unresolvable, or no connection in time).
    Connect { addr: String, reason: String },
    /// The TLS handshake failed (an untrusted certificate, a name mismatch, no TLS there).
    Tls { addr: String, reason: String },
    /// The broker refused the SASL authentication; `message` is its error message.
    Authentication {
        addr: String,
        mechanism: &'static str,
        message: String,
    },
    /// No whole answer within the request timeout.
    Timeout {
        addr: String,
        api: ApiKey,
        timeout: Duration,
    },
    /// The connection broke during a request.
    Io {
        addr: String,
        api: ApiKey,
        source: std::io::Error,
    },
    /// The answer could not be decoded or does not fit the request.
    Protocol { addr: String, message: String },
    /// The broker supports no version of this API that we speak.
    Unsupported {
        addr: String,
        api: ApiKey,
        ours: VersionRange,
        theirs: Option<VersionRange>,
    },
    /// The topic does not exist.
    UnknownTopic(String),
    /// The topic exists but has no such partition.
    UnknownPartition { topic: String, partition: i32 },
    /// A Kafka error code, for the request or for the one resource it asked about.
    Kafka {
        error: ResponseError,
        message: Option<String>,
    },
}

impl WireError {
    /// Whether the cluster was simply not reached (worth a hint about the address).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            WireError::Connect { .. } | WireError::Timeout { .. } | WireError::Io { .. }
        )
    }

    /// The Kafka error code, if that is what this is.
    pub fn kafka(&self) -> Option<ResponseError> {
        match self {
            WireError::Kafka { error, .. } => Some(*error),
            _ => None,
        }
    }

    fn is_retriable(&self) -> bool {
        matches!(self, WireError::Kafka { error, .. } if error.is_retriable())
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Connect { addr, reason } => write!(f, "cannot connect to {addr}: {reason}"),
            WireError::Tls { addr, reason } => {
                write!(f, "TLS handshake with {addr} failed: {reason}")
            }
            WireError::Authentication {
                addr,
                mechanism,
                message,
            } => write!(
                f,
                "SASL {mechanism} authentication with {addr} failed: {message}"
            ),
            WireError::Timeout { addr, api, timeout } => write!(
                f,
                "no answer to {api:?} from {addr} within {} ms",
                timeout.as_millis()
            ),
            WireError::Io { addr, api, source } => {
                write!(f, "connection to {addr} failed during {api:?}: {source}")
            }
            WireError::Protocol { addr, message } => {
                write!(f, "unexpected answer from {addr}: {message}")
            }
            WireError::Unsupported {
                addr,
                api,
                ours,
                theirs,
            } => match theirs {
                Some(theirs) => write!(
                    f,
                    "the broker at {addr} supports {api:?} versions {theirs}, this tool {ours}"
                ),
                None => write!(f, "the broker at {addr} does not support {api:?}"),
            },
            WireError::UnknownTopic(topic) => write!(f, "topic '{topic}' does not exist"),
            WireError::UnknownPartition { topic, partition } => {
                write!(f, "topic '{topic}' has no partition {partition}")
            }
            WireError::Kafka { error, message } => match message.as_deref() {
                Some(m) if !m.is_empty() && m != error.to_string() => write!(f, "{error}: {m}"),
                _ => write!(f, "{error}"),
            },
        }
    }
}

impl std::error::Error for WireError {}

/// `Err` for a non-zero error code, with the broker's message when it sent one.
pub fn check(code: i16, message: Option<&StrBytes>) -> Result<(), WireError> {
    match ResponseError::try_from_code(code) {
        None => Ok(()),
        Some(error) => Err(WireError::Kafka {
            error,
            message: message.map(|m| m.to_string()),
        }),
    }
}

/// How a connection identifies itself, how long it waits and how it is secured.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    pub client_id: String,
    pub timeout: Duration,
    pub security: WireSecurity,
}

/// A plain or a TLS stream.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One connection to one broker, with the API versions it supports.
pub struct Connection {
    addr: String,
    stream: Box<dyn Stream>,
    settings: ClientSettings,
    next_correlation_id: i32,
    /// The broker's supported versions by API key, from ApiVersions.
    versions: HashMap<i16, VersionRange>,
}

impl Connection {
    /// Connects (with a TLS handshake on a TLS listener), negotiates API versions and
    /// authenticates (on a SASL listener).
    pub async fn open(addr: &str, settings: &ClientSettings) -> Result<Connection, WireError> {
        let connect = async {
            let tcp = TcpStream::connect(addr)
                .await
                .map_err(|e| WireError::Connect {
                    addr: addr.to_string(),
                    reason: e.to_string(),
                })?;
            let _ = tcp.set_nodelay(true);
            let Some(config) = &settings.security.tls else {
                return Ok(Box::new(tcp) as Box<dyn Stream>);
            };
            let tls_error = |reason: String| WireError::Tls {
                addr: addr.to_string(),
                reason,
            };
            let name = server_name(addr).map_err(tls_error)?;
            let connector = tokio_rustls::TlsConnector::from(config.clone());
            let tls = connector
                .connect(name, tcp)
                .await
                .map_err(|e| tls_error(e.to_string()))?;
            Ok(Box::new(tls) as Box<dyn Stream>)
        };
        let stream = match tokio::time::timeout(settings.timeout, connect).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(WireError::Connect {
                    addr: addr.to_string(),
                    reason: format!("no connection within {} ms", settings.timeout.as_millis()),
                })
            }
        };
        let mut connection = Connection {
            addr: addr.to_string(),
            stream,
            settings: settings.clone(),
            next_correlation_id: 0,
            versions: HashMap::new(),
        };
        connection.negotiate().await?;
        if let Some(login) = &settings.security.sasl {
            connection.authenticate(login).await?;
        }
        Ok(connection)
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Learns the broker's versions. A broker that does not know our ApiVersions version
    /// answers UNSUPPORTED_VERSION in the v0 layout with its own range (KIP-511); we then
    /// ask again at the highest version both know.
    async fn negotiate(&mut self) -> Result<(), WireError> {
        let mut version = ApiVersionsRequest::VERSIONS.max;
        for _ in 0..2 {
            // The client software fields exist from v3 (KIP-511).
            let request = if version >= 3 {
                ApiVersionsRequest::default()
                    .with_client_software_name(StrBytes::from_static_str("moldau-cli"))
                    .with_client_software_version(StrBytes::from_static_str(env!(
                        "CARGO_PKG_VERSION"
                    )))
            } else {
                ApiVersionsRequest::default()
            };
            let body = self.round_trip(&request, version).await?;
            let code = body
                .get(..2)
                .map(|b| i16::from_be_bytes([b[0], b[1]]))
                .ok_or_else(|| self.protocol("ApiVersions answer is empty".to_string()))?;
            if code == ResponseError::UnsupportedVersion.code() && version > 0 {
                let fallback: ApiVersionsResponse = self.decode(&body, 0)?;
                let theirs = fallback
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                    .map(|k| k.max_version)
                    .unwrap_or(0);
                version = theirs.clamp(0, version - 1);
                continue;
            }
            let response: ApiVersionsResponse = self.decode(&body, version)?;
            check(response.error_code, None)?;
            self.versions = response
                .api_keys
                .iter()
                .map(|k| {
                    let range = VersionRange {
                        min: k.min_version,
                        max: k.max_version,
                    };
                    (k.api_key, range)
                })
                .collect();
            return Ok(());
        }
        Err(self.protocol("ApiVersions negotiation did not settle".to_string()))
    }

    /// The highest version of `R` that both this tool and the broker support.
    pub fn version<R: Request>(&self) -> Result<i16, WireError> {
        let theirs = self.versions.get(&R::KEY).copied();
        let common = theirs.map(|t| t.intersect(&R::VERSIONS));
        match common {
            Some(range) if !range.is_empty() => Ok(range.max),
            _ => Err(WireError::Unsupported {
                addr: self.addr.clone(),
                api: api_key::<R>(),
                ours: R::VERSIONS,
                theirs,
            }),
        }
    }

    /// Sends `request` at the highest common version and decodes the answer.
    pub async fn send<R: Request>(&mut self, request: &R) -> Result<R::Response, WireError> {
        let version = self.version::<R>()?;
        let body = self.round_trip(request, version).await?;
        self.decode(&body, version)
    }

    /// Writes one request frame and reads its answer's body (after the response header),
    /// all within the request timeout.
    async fn round_trip<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<Vec<u8>, WireError> {
        let api = api_key::<R>();
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let correlation_id = self.next_correlation_id;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_string(self.settings.client_id.clone())));
        let mut frame = vec![0u8; 4];
        header
            .encode(&mut frame, R::header_version(version))
            .and_then(|()| request.encode(&mut frame, version))
            .map_err(|e| self.protocol(format!("cannot encode {api:?} v{version}: {e}")))?;
        let size = i32::try_from(frame.len() - 4)
            .map_err(|_| self.protocol(format!("{api:?} request too large")))?;
        frame[..4].copy_from_slice(&size.to_be_bytes());

        let timeout = self.settings.timeout;
        let stream = &mut self.stream;
        let exchange = async {
            stream.write_all(&frame).await?;
            stream.flush().await?;
            let size = stream.read_i32().await?;
            let len = usize::try_from(size)
                .ok()
                .filter(|len| *len <= MAX_RESPONSE_BYTES)
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("response size {size} outside 0..={MAX_RESPONSE_BYTES}"),
                    )
                })?;
            let mut body = vec![0u8; len];
            stream.read_exact(&mut body).await?;
            Ok::<_, std::io::Error>(body)
        };
        let body = match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(body)) => body,
            Ok(Err(source)) => {
                return Err(WireError::Io {
                    addr: self.addr.clone(),
                    api,
                    source,
                })
            }
            Err(_) => {
                return Err(WireError::Timeout {
                    addr: self.addr.clone(),
                    api,
                    timeout,
                })
            }
        };
        let mut rest = &body[..];
        let header = ResponseHeader::decode(&mut rest, R::Response::header_version(version))
            .map_err(|e| {
                self.protocol(format!("cannot decode the {api:?} response header: {e}"))
            })?;
        if header.correlation_id != correlation_id {
            return Err(self.protocol(format!(
                "answer to request {} where {correlation_id} was expected",
                header.correlation_id
            )));
        }
        Ok(rest.to_vec())
    }

    fn decode<T: Decodable>(&self, body: &[u8], version: i16) -> Result<T, WireError> {
        let mut rest = body;
        T::decode(&mut rest, version).map_err(|e| {
            self.protocol(format!(
                "cannot decode {} v{version}: {e}",
                std::any::type_name::<T>()
                    .rsplit("::")
                    .next()
                    .unwrap_or("response")
            ))
        })
    }

    fn protocol(&self, message: String) -> WireError {
        WireError::Protocol {
            addr: self.addr.clone(),
            message,
        }
    }
}

fn api_key<R: Request>() -> ApiKey {
    // Every `Request` type of kafka-protocol has a known key.
    ApiKey::try_from(R::KEY).unwrap_or(ApiKey::ApiVersions)
}

/// The name a TLS server's certificate must carry: the host of `host:port` (an IP address
/// or a DNS name; IPv6 in brackets).
fn server_name(addr: &str) -> Result<ServerName<'static>, String> {
    let host = addr
        .rsplit_once(':')
        .map_or(addr, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|e| format!("bad host name {host}: {e}"))
}

/// `host:port`, with brackets around an IPv6 host.
fn address(host: &str, port: i32) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A broker as Metadata names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broker {
    pub node_id: i32,
    pub addr: String,
}

/// Coordinator key types of FindCoordinator (0 is a consumer group, which the other
/// commands find through librdkafka).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoordinatorType {
    /// A group (the Connect runtime's workers; consumers find theirs through librdkafka).
    Group = 0,
    Transaction = 1,
}

/// The cluster as seen from a bootstrap broker: its brokers, and a connection to each
/// one that is asked something.
pub struct Cluster {
    settings: ClientSettings,
    bootstrap: Connection,
    brokers: BTreeMap<i32, Broker>,
    connections: HashMap<i32, Connection>,
}

impl Cluster {
    /// Connects to the first reachable address of `bootstrap` (comma separated) and
    /// learns the brokers from Metadata.
    pub async fn connect(bootstrap: &str, settings: ClientSettings) -> Result<Cluster, WireError> {
        let mut last_error = None;
        for addr in bootstrap
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            match Connection::open(addr, &settings).await {
                Ok(connection) => {
                    let mut cluster = Cluster {
                        settings,
                        bootstrap: connection,
                        brokers: BTreeMap::new(),
                        connections: HashMap::new(),
                    };
                    cluster.metadata(Some(&[])).await?;
                    return Ok(cluster);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| WireError::Connect {
            addr: bootstrap.to_string(),
            reason: "no bootstrap address given".to_string(),
        }))
    }

    /// How this client identifies itself and how long it waits.
    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// The connection to the bootstrap broker (for requests any broker answers).
    pub fn bootstrap(&mut self) -> &mut Connection {
        &mut self.bootstrap
    }

    /// The brokers of the cluster, by node id.
    pub fn brokers(&self) -> impl Iterator<Item = &Broker> {
        self.brokers.values()
    }

    /// Metadata for these topics (`None`: all), without creating any; refreshes the
    /// broker list.
    pub async fn metadata(
        &mut self,
        topics: Option<&[&str]>,
    ) -> Result<MetadataResponse, WireError> {
        let version = self.bootstrap.version::<MetadataRequest>()?;
        let topics = topics.map(|names| {
            names
                .iter()
                .map(|name| {
                    MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(name.to_string()))))
                })
                .collect()
        });
        // v0 has no null list (empty means all); v1-3 always allow auto-creation.
        let topics = if version == 0 {
            Some(topics.unwrap_or_default())
        } else {
            topics
        };
        let request = MetadataRequest::default()
            .with_topics(topics)
            .with_allow_auto_topic_creation(version < 4);
        let response = self.bootstrap.send(&request).await?;
        self.brokers = response
            .brokers
            .iter()
            .map(|b| {
                let broker = Broker {
                    node_id: b.node_id.0,
                    addr: address(&b.host, b.port),
                };
                (broker.node_id, broker)
            })
            .collect();
        Ok(response)
    }

    /// The connection to broker `node_id`, opened on first use.
    pub async fn broker(&mut self, node_id: i32) -> Result<&mut Connection, WireError> {
        if !self.connections.contains_key(&node_id) {
            let broker = match self.brokers.get(&node_id) {
                Some(b) => b.clone(),
                None => {
                    self.metadata(Some(&[])).await?;
                    self.brokers
                        .get(&node_id)
                        .cloned()
                        .ok_or_else(|| WireError::Kafka {
                            error: ResponseError::BrokerNotAvailable,
                            message: Some(format!(
                                "broker {node_id} is not in the cluster metadata"
                            )),
                        })?
                }
            };
            let connection = Connection::open(&broker.addr, &self.settings).await?;
            self.connections.insert(node_id, connection);
        }
        Ok(self.connections.get_mut(&node_id).expect("inserted above"))
    }

    /// The leader of a partition, waiting out an election (LEADER_NOT_AVAILABLE).
    pub async fn leader(&mut self, topic: &str, partition: i32) -> Result<i32, WireError> {
        retrying(self.settings.timeout, async || {
            self.leader_once(topic, partition).await
        })
        .await
    }

    async fn leader_once(&mut self, topic: &str, partition: i32) -> Result<i32, WireError> {
        let response = self.metadata(Some(&[topic])).await?;
        let t = response
            .topics
            .iter()
            .find(|t| t.name.as_deref().map(|n| n.as_str()) == Some(topic))
            .ok_or_else(|| WireError::UnknownTopic(topic.to_string()))?;
        if t.error_code == ResponseError::UnknownTopicOrPartition.code() {
            return Err(WireError::UnknownTopic(topic.to_string()));
        }
        check(t.error_code, None)?;
        let p = t
            .partitions
            .iter()
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| WireError::UnknownPartition {
                topic: topic.to_string(),
                partition,
            })?;
        check(p.error_code, None)?;
        if p.leader_id.0 < 0 {
            return Err(WireError::Kafka {
                error: ResponseError::LeaderNotAvailable,
                message: None,
            });
        }
        Ok(p.leader_id.0)
    }

    /// The node that coordinates `key`, waiting while the coordinator loads or its
    /// internal topic is being created.
    pub async fn find_coordinator(
        &mut self,
        key_type: CoordinatorType,
        key: &str,
    ) -> Result<i32, WireError> {
        retrying(self.settings.timeout, async || {
            find_coordinator_once(&mut self.bootstrap, key_type, key).await
        })
        .await
    }

    /// Sends `request` to the leader of `topic`-`partition` and takes from the answer the
    /// part about that partition with `extract`. A retriable error (a stale leader, an
    /// election) refreshes the leader and tries again until the request timeout.
    pub async fn send_to_leader<R, T>(
        &mut self,
        topic: &str,
        partition: i32,
        request: &R,
        extract: impl Fn(R::Response) -> Result<T, WireError>,
    ) -> Result<T, WireError>
    where
        R: Request,
    {
        retrying(self.settings.timeout, async || {
            let leader = self.leader(topic, partition).await?;
            self.broker(leader)
                .await?
                .send(request)
                .await
                .and_then(&extract)
        })
        .await
    }
}

/// One FindCoordinator on `connection` (no retries).
pub async fn find_coordinator_once(
    connection: &mut Connection,
    key_type: CoordinatorType,
    key: &str,
) -> Result<i32, WireError> {
    let version = connection.version::<FindCoordinatorRequest>()?;
    let key_str = StrBytes::from_string(key.to_string());
    // v4+ batches keys; v0 only knows groups.
    let request = if version >= 4 {
        FindCoordinatorRequest::default()
            .with_key_type(key_type as i8)
            .with_coordinator_keys(vec![key_str])
    } else if version >= 1 {
        FindCoordinatorRequest::default()
            .with_key_type(key_type as i8)
            .with_key(key_str)
    } else {
        return Err(WireError::Unsupported {
            addr: connection.addr().to_string(),
            api: ApiKey::FindCoordinator,
            ours: VersionRange { min: 1, max: 6 },
            theirs: Some(VersionRange { min: 0, max: 0 }),
        });
    };
    let response = connection.send(&request).await?;
    if version >= 4 {
        let c = response
            .coordinators
            .iter()
            .find(|c| c.key.as_str() == key)
            .ok_or_else(|| WireError::Protocol {
                addr: connection.addr().to_string(),
                message: format!("FindCoordinator answer does not mention '{key}'"),
            })?;
        check(c.error_code, c.error_message.as_ref())?;
        Ok(c.node_id.0)
    } else {
        check(response.error_code, response.error_message.as_ref())?;
        Ok(response.node_id.0)
    }
}

/// Runs `attempt` until it succeeds, fails for good, or fails retriably (a stale leader or
/// coordinator, one still loading) past `timeout`.
pub async fn retrying<T>(
    timeout: Duration,
    mut attempt: impl AsyncFnMut() -> Result<T, WireError>,
) -> Result<T, WireError> {
    let deadline = Instant::now() + timeout;
    loop {
        match attempt().await {
            Err(e) if e.is_retriable() && Instant::now() < deadline => {
                tokio::time::sleep(RETRY_BACKOFF).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn settings(timeout_ms: u64) -> ClientSettings {
        ClientSettings {
            client_id: "wire-test".to_string(),
            timeout: Duration::from_millis(timeout_ms),
            security: WireSecurity::default(),
        }
    }

    /// Reads one request frame; returns (api version, correlation id).
    async fn read_request(stream: &mut TcpStream) -> (i16, i32) {
        let size = stream.read_i32().await.unwrap();
        let mut frame = vec![0u8; size as usize];
        stream.read_exact(&mut frame).await.unwrap();
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let correlation = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        (version, correlation)
    }

    #[tokio::test]
    async fn a_silent_peer_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let _peer = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(stream);
        });
        let started = Instant::now();
        let err = Connection::open(&addr, &settings(300)).await.err().unwrap();
        assert!(matches!(err, WireError::Timeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(err.to_string().contains("within 300 ms"), "{err}");
    }

    #[tokio::test]
    async fn an_oversized_answer_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let _peer = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            read_request(&mut stream).await;
            stream.write_all(&i32::MAX.to_be_bytes()).await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let err = Connection::open(&addr, &settings(5_000))
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("response size"), "{err}");
    }

    #[tokio::test]
    async fn retriable_errors_are_retried_until_the_timeout() {
        let kafka = |error| WireError::Kafka {
            error,
            message: None,
        };
        let mut tries = 0;
        let found = retrying(Duration::from_secs(30), async || {
            tries += 1;
            match tries {
                1 => Err(kafka(ResponseError::CoordinatorLoadInProgress)),
                2 => Err(kafka(ResponseError::NotLeaderOrFollower)),
                _ => Ok(tries),
            }
        })
        .await;
        assert_eq!(found.unwrap(), 3);

        let mut tries = 0;
        let fatal = retrying(Duration::from_secs(30), async || {
            tries += 1;
            Err::<(), _>(kafka(ResponseError::TransactionalIdNotFound))
        })
        .await;
        assert_eq!(
            fatal.unwrap_err().kafka(),
            Some(ResponseError::TransactionalIdNotFound)
        );
        assert_eq!(tries, 1);

        let started = Instant::now();
        let stuck = retrying(Duration::from_millis(300), async || {
            Err::<(), _>(kafka(ResponseError::CoordinatorNotAvailable))
        })
        .await;
        assert_eq!(
            stuck.unwrap_err().kafka(),
            Some(ResponseError::CoordinatorNotAvailable)
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn kafka_errors_read_as_names() {
        let err = check(ResponseError::TransactionalIdNotFound.code(), None).unwrap_err();
        assert_eq!(err.to_string(), "TransactionalIdNotFound");
        assert_eq!(err.kafka(), Some(ResponseError::TransactionalIdNotFound));
        let message = StrBytes::from_static_str("no such producer");
        let err = check(ResponseError::InvalidProducerEpoch.code(), Some(&message)).unwrap_err();
        assert_eq!(err.to_string(), "InvalidProducerEpoch: no such producer");
        assert!(check(0, None).is_ok());
        assert_eq!(address("::1", 9092), "[::1]:9092");
    }
}
