//! Requests from this node to other nodes: Kafka framing (4-byte length, request header
//! v1, correlation id in the answer) over pooled connections, secured as the listener
//! they go to (TLS for SSL listeners). A node has one client per listener it reaches: the
//! inter-broker listener and the controller listener, as Kafka's brokers do.
//!
//! Carries the Raft RPCs of the metadata quorum (private API key, see `raft_transport`)
//! and Kafka requests a node sends another (BrokerRegistration to the active controller).
//! Every connect and round trip is bounded by the caller's timeout; an answer larger than
//! `max_response_bytes` is refused before it is read. A connection that failed, or whose
//! round trip was dropped half way, is never reused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::net::Connection;
use crate::sasl::SaslMechanism;
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use moldau_security::jaas::LoginCredentials;
use moldau_security::plain;
use moldau_security::scram::ScramClient;
use tokio::time::Instant;

/// SaslAuthenticate v2 (KIP-368's session lifetime is in v1 and later).
const SASL_AUTHENTICATE_VERSION: i16 = 2;
/// A pooled connection whose SASL session ends sooner than this is not reused.
const SESSION_END_MARGIN: Duration = Duration::from_secs(5);

/// Idle connections kept per peer (concurrent RPCs to one peer open more, then close them).
const IDLE_CONNECTIONS_PER_PEER: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum InterBrokerError {
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("no answer from {addr} within {timeout_ms} ms")]
    Timeout { addr: String, timeout_ms: u128 },
    #[error("connection to {addr} failed: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("bad answer from {addr}: {reason}")]
    Protocol { addr: String, reason: String },
}

/// How connections of a client are secured: as the listener they go to.
#[derive(Clone, Default)]
pub struct PeerSecurity {
    /// SSL and SASL_SSL listeners.
    pub tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    /// SASL_PLAINTEXT and SASL_SSL listeners: the mechanism and this node's credentials.
    pub sasl: Option<(SaslMechanism, LoginCredentials)>,
    /// The listener needs what this node cannot do (no trust store, no credentials):
    /// every connect fails with this reason rather than falling back to less security.
    pub unusable: Option<String>,
}

/// A pooled connection and when its SASL session ends (KIP-368: a connection is not used
/// past its session lifetime; a new one authenticates afresh).
struct Pooled {
    connection: Connection,
    session_ends: Option<Instant>,
}

/// Connections from this node to its peers, by `host:port`.
pub struct InterBrokerClient {
    client_id: StrBytes,
    security: PeerSecurity,
    max_response_bytes: usize,
    idle: Mutex<HashMap<String, Vec<Pooled>>>,
    correlation_id: AtomicI32,
}

impl InterBrokerClient {
    pub fn new(node_id: i32, max_response_bytes: usize, security: PeerSecurity) -> Self {
        InterBrokerClient {
            client_id: StrBytes::from_string(format!("moldau-node-{node_id}")),
            security,
            max_response_bytes,
            idle: Mutex::new(HashMap::new()),
            correlation_id: AtomicI32::new(0),
        }
    }

    /// Sends one request (`api_key`, `api_version`, body already encoded) and returns the
    /// answer's bytes after its correlation id (for a response header v0).
    pub async fn round_trip_raw(
        &self,
        addr: &str,
        api_key: i16,
        api_version: i16,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Bytes, InterBrokerError> {
        let mut answer = self
            .round_trip(addr, (api_key, api_version, 1), body, timeout)
            .await?;
        let _ = answer.split_to(4);
        Ok(answer)
    }

    /// The whole answer, its correlation id checked. `api`: key, version, header version.
    async fn round_trip(
        &self,
        addr: &str,
        (api_key, api_version, header_version): (i16, i16, i16),
        body: &[u8],
        timeout: Duration,
    ) -> Result<Bytes, InterBrokerError> {
        let (correlation_id, frame) =
            self.frame(addr, (api_key, api_version, header_version), body)?;
        let timed_out = || InterBrokerError::Timeout {
            addr: addr.to_string(),
            timeout_ms: timeout.as_millis(),
        };
        let exchange = async {
            let mut stream = self.connection(addr).await?;
            let answer = self.exchange(&mut stream.connection, addr, &frame).await?;
            self.give_back(addr, stream);
            Ok::<_, InterBrokerError>(answer)
        };
        let answer = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| timed_out())??;
        if answer.len() < 4 {
            return Err(self.protocol(addr, "answer without a header"));
        }
        let echoed = i32::from_be_bytes([answer[0], answer[1], answer[2], answer[3]]);
        if echoed != correlation_id {
            return Err(self.protocol(
                addr,
                format!("correlation id {echoed}, expected {correlation_id}"),
            ));
        }
        Ok(answer)
    }

    /// Sends a Kafka request at `version` and decodes its answer.
    pub async fn send<R>(
        &self,
        addr: &str,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, InterBrokerError>
    where
        R: Request + Encodable,
        R::Response: Decodable + HeaderVersion,
    {
        let mut body = BytesMut::new();
        request
            .encode(&mut body, version)
            .map_err(|e| self.protocol(addr, e))?;
        let api_key = ApiKey::try_from(R::KEY).map_err(|_| self.protocol(addr, "api key"))?;
        let header_version = api_key.request_header_version(version);
        let mut answer = self
            .round_trip(addr, (R::KEY, version, header_version), &body, timeout)
            .await?;
        ResponseHeader::decode(&mut answer, api_key.response_header_version(version))
            .map_err(|e| self.protocol(addr, e))?;
        R::Response::decode(&mut answer, version).map_err(|e| self.protocol(addr, e))
    }

    /// A request frame (size prefix included) and its correlation id.
    fn frame(
        &self,
        addr: &str,
        (api_key, api_version, header_version): (i16, i16, i16),
        body: &[u8],
    ) -> Result<(i32, BytesMut), InterBrokerError> {
        let correlation_id = self.correlation_id.fetch_add(1, Ordering::Relaxed);
        let mut frame = BytesMut::with_capacity(body.len() + 64);
        frame.put_i32(0); // length, set below
        let header = RequestHeader::default()
            .with_request_api_key(api_key)
            .with_request_api_version(api_version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        header
            .encode(&mut frame, header_version)
            .map_err(|e| self.protocol(addr, e))?;
        frame.extend_from_slice(body);
        let len = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&len.to_be_bytes());
        Ok((correlation_id, frame))
    }

    fn protocol(&self, addr: &str, reason: impl std::fmt::Display) -> InterBrokerError {
        InterBrokerError::Protocol {
            addr: addr.to_string(),
            reason: reason.to_string(),
        }
    }

    async fn connection(&self, addr: &str) -> Result<Pooled, InterBrokerError> {
        while let Some(pooled) = self.idle.lock().get_mut(addr).and_then(Vec::pop) {
            // A session about to end is not worth a request: open a new one.
            let fresh = pooled
                .session_ends
                .is_none_or(|end| Instant::now() + SESSION_END_MARGIN < end);
            if fresh {
                return Ok(pooled);
            }
        }
        let failed = |reason: String| InterBrokerError::Connect {
            addr: addr.to_string(),
            reason,
        };
        if let Some(reason) = &self.security.unusable {
            return Err(failed(reason.clone()));
        }
        let mut connection = crate::net::network()
            .connect(addr)
            .await
            .map_err(|e| failed(e.to_string()))?;
        if let Some(config) = &self.security.tls {
            let host = addr
                .rsplit_once(':')
                .map_or(addr, |(host, _)| host)
                .trim_start_matches('[')
                .trim_end_matches(']');
            connection = crate::net::tls_connect(connection, config.clone(), host)
                .await
                .map_err(|e| failed(format!("TLS handshake: {e}")))?;
        }
        let mut session_ends = None;
        if let Some((mechanism, credentials)) = &self.security.sasl {
            let lifetime_ms = self
                .authenticate(&mut connection, addr, *mechanism, credentials)
                .await?;
            if lifetime_ms > 0 {
                session_ends = Some(Instant::now() + Duration::from_millis(lifetime_ms as u64));
            }
        }
        Ok(Pooled {
            connection,
            session_ends,
        })
    }

    /// SaslHandshake v1 and SaslAuthenticate as a Kafka client: the session lifetime the
    /// server gave (0: none).
    async fn authenticate(
        &self,
        connection: &mut Connection,
        addr: &str,
        mechanism: SaslMechanism,
        credentials: &LoginCredentials,
    ) -> Result<i64, InterBrokerError> {
        let failed = |reason: String| InterBrokerError::Connect {
            addr: addr.to_string(),
            reason: format!("SASL {}: {reason}", mechanism.name()),
        };
        let handshake = SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_static_str(mechanism.name()));
        let answer: SaslHandshakeResponse =
            self.request_on(connection, addr, &handshake, 1).await?;
        if answer.error_code != 0 {
            return Err(failed(format!(
                "handshake refused (error {})",
                answer.error_code
            )));
        }
        let step = |token: Vec<u8>| {
            SaslAuthenticateRequest::default().with_auth_bytes(bytes::Bytes::from(token))
        };
        let check = |answer: &SaslAuthenticateResponse| {
            if answer.error_code == 0 {
                Ok(())
            } else {
                Err(failed(format!(
                    "{} (error {})",
                    answer.error_message.as_ref().map_or("", |m| m.as_str()),
                    answer.error_code
                )))
            }
        };
        match mechanism {
            // Refused by the config (a node has no token endpoint to fetch tokens from).
            SaslMechanism::OAuthBearer => Err(failed(
                "OAUTHBEARER is not supported between nodes: use PLAIN or SCRAM".into(),
            )),
            SaslMechanism::Plain => {
                let token = plain::client_token(&credentials.username, &credentials.password);
                let answer: SaslAuthenticateResponse = self
                    .request_on(connection, addr, &step(token), SASL_AUTHENTICATE_VERSION)
                    .await?;
                check(&answer)?;
                Ok(answer.session_lifetime_ms)
            }
            SaslMechanism::Scram(scram) => {
                let mut client =
                    ScramClient::new(scram, &credentials.username, &credentials.password);
                let first = client.client_first();
                let answer: SaslAuthenticateResponse = self
                    .request_on(connection, addr, &step(first), SASL_AUTHENTICATE_VERSION)
                    .await?;
                check(&answer)?;
                let last = client
                    .handle_server_first(&answer.auth_bytes)
                    .map_err(|e| failed(e.to_string()))?;
                let answer: SaslAuthenticateResponse = self
                    .request_on(connection, addr, &step(last), SASL_AUTHENTICATE_VERSION)
                    .await?;
                check(&answer)?;
                client
                    .handle_server_final(&answer.auth_bytes)
                    .map_err(|e| failed(e.to_string()))?;
                Ok(answer.session_lifetime_ms)
            }
        }
    }

    /// One request on a given connection (not pooled yet).
    async fn request_on<R>(
        &self,
        connection: &mut Connection,
        addr: &str,
        request: &R,
        version: i16,
    ) -> Result<R::Response, InterBrokerError>
    where
        R: Request + Encodable,
        R::Response: Decodable + HeaderVersion,
    {
        let api_key = ApiKey::try_from(R::KEY).map_err(|_| self.protocol(addr, "api key"))?;
        let header_version = api_key.request_header_version(version);
        let mut body = BytesMut::new();
        request
            .encode(&mut body, version)
            .map_err(|e| self.protocol(addr, e))?;
        let (correlation_id, frame) = self.frame(addr, (R::KEY, version, header_version), &body)?;
        let mut answer = self.exchange(connection, addr, &frame).await?;
        let header = ResponseHeader::decode(&mut answer, api_key.response_header_version(version))
            .map_err(|e| self.protocol(addr, e))?;
        if header.correlation_id != correlation_id {
            return Err(self.protocol(addr, "correlation id mismatch"));
        }
        R::Response::decode(&mut answer, version).map_err(|e| self.protocol(addr, e))
    }

    fn give_back(&self, addr: &str, stream: Pooled) {
        let mut idle = self.idle.lock();
        let pool = idle.entry(addr.to_string()).or_default();
        if pool.len() < IDLE_CONNECTIONS_PER_PEER {
            pool.push(stream);
        }
    }

    async fn exchange(
        &self,
        stream: &mut Connection,
        addr: &str,
        frame: &[u8],
    ) -> Result<Bytes, InterBrokerError> {
        let io = |source| InterBrokerError::Io {
            addr: addr.to_string(),
            source,
        };
        stream.writer.write_all(frame).await.map_err(io)?;
        let len = stream.reader.read_i32().await.map_err(io)?;
        if len < 0 || len as usize > self.max_response_bytes {
            return Err(self.protocol(
                addr,
                format!(
                    "answer of {len} bytes (at most {})",
                    self.max_response_bytes
                ),
            ));
        }
        let mut answer = vec![0u8; len as usize];
        stream.reader.read_exact(&mut answer).await.map_err(io)?;
        Ok(Bytes::from(answer))
    }
}
