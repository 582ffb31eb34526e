//! Listeners and connections: bounded length-prefixed frames, one request at a time per
//! connection, responses in request order.
//!
//! Like Kafka's processor, a connection handles its requests one after another: clients may
//! pipeline (the bytes wait in the socket buffer), responses keep request order, and a
//! producer's batches to one partition are appended in the order sent. Responses to
//! pipelined requests are flushed together.
//!
//! Bounds: a frame's announced size is reserved from one budget shared by all connections
//! (`queued.max.request.bytes`) before its body is read, and given back once its request is
//! handled; a connection that finds the budget spent waits (backpressure), and whoever holds
//! a reservation can always finish. The frame buffer itself grows as bytes arrive, so
//! memory follows what clients send, not what they announce. Decoding may use at most
//! [`DECODE_BYTES_PER_FRAME_BYTE`] times the frame in array elements. Connections are
//! limited as Kafka's `ConnectionQuotas` does, and one idle for `connections.max.idle.ms`
//! since its last complete request is closed, however it trickles bytes.
//!
//! Cancellation: a request's handler (a parked Fetch, JoinGroup, ...) is dropped when the
//! client disconnects (except Produce) or the broker shuts down; shutdown gives in-flight
//! requests [`SHUTDOWN_GRACE`] to finish, then drops them. Handlers keep their writes
//! synchronous between awaits (controller commit, log append), so dropping one at an await
//! never leaves a write half done.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use moldau_security::principal::{distinguished_name, KafkaPrincipal, SslPrincipalMapper};

use crate::api::{self, Outcome};
use crate::config::ConnectionConfig;
use crate::sasl::AuthStep;
use crate::state::BrokerState;

const SOCKET_BUFFER_BYTES: usize = 64 * 1024;
const PRODUCE_API_KEY: i16 = 0;
/// How much a frame's buffer grows by as its bytes arrive.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Decoded array elements may take at most this many bytes per frame byte (see
/// `kafka_protocol::protocol::types::with_decode_limit`); a legitimate request decodes to
/// about its own size or less, since records stay as the frame's bytes.
pub const DECODE_BYTES_PER_FRAME_BYTE: usize = 8;
/// After shutdown is signalled, in-flight requests get this long before being dropped.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Backoff when accept fails (typically out of descriptors): no spinning, and the open
/// connections and background tasks keep the descriptors they have.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(500);

/// What all listeners share: the request budget and the connection counts.
pub struct NetworkLimits {
    config: ConnectionConfig,
    /// Permits are bytes of requests being read, decoded or handled.
    request_budget: Arc<Semaphore>,
    connections: Mutex<ConnectionCounts>,
    connection_closed: Notify,
}

#[derive(Default)]
struct ConnectionCounts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    /// Start of the current one-second window and connections accepted in it.
    window_start: Option<Instant>,
    window_count: u32,
}

impl NetworkLimits {
    pub fn new(config: ConnectionConfig) -> Arc<NetworkLimits> {
        let budget = config.queued_max_request_bytes.min(Semaphore::MAX_PERMITS);
        Arc::new(NetworkLimits {
            request_budget: Arc::new(Semaphore::new(budget)),
            config,
            connections: Mutex::new(ConnectionCounts::default()),
            connection_closed: Notify::new(),
        })
    }

    fn limit_for(&self, ip: IpAddr) -> usize {
        let overrides = &self.config.max_connections_per_ip_overrides;
        overrides
            .get(&ip)
            .copied()
            .unwrap_or(self.config.max_connections_per_ip)
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, ConnectionCounts> {
        // Counters stay consistent under any panic (plain integer updates): keep going.
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until a connection may be accepted: below `max.connections` (Kafka blocks the
    /// acceptor there) and within `max.connection.creation.rate` (Kafka throttles).
    async fn wait_for_slot(&self) {
        loop {
            let notified = self.connection_closed.notified();
            let delay = {
                let mut counts = self.counts();
                if counts.total >= self.config.max_connections {
                    None
                } else {
                    let now = Instant::now();
                    let start = *counts.window_start.get_or_insert(now);
                    if now.duration_since(start) >= Duration::from_secs(1) {
                        counts.window_start = Some(now);
                        counts.window_count = 0;
                    }
                    if counts.window_count < self.config.max_connection_creation_rate {
                        return;
                    }
                    Some(start + Duration::from_secs(1) - now)
                }
            };
            match delay {
                Some(delay) => tokio::time::sleep(delay).await,
                None => notified.await,
            }
        }
    }

    /// Registers an accepted connection, or `None` past `max.connections.per.ip` (Kafka
    /// closes such a connection at once).
    fn register(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionSlot> {
        let mut counts = self.counts();
        let count = counts.per_ip.get(&ip).copied().unwrap_or(0);
        if count >= self.limit_for(ip) {
            return None;
        }
        counts.per_ip.insert(ip, count + 1);
        counts.total += 1;
        counts.window_count = counts.window_count.saturating_add(1);
        Some(ConnectionSlot {
            limits: self.clone(),
            ip,
        })
    }

    /// Takes `bytes` from the request budget, waiting until they are free.
    async fn reserve(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let bytes = u32::try_from(bytes).ok()?;
        self.request_budget
            .clone()
            .acquire_many_owned(bytes)
            .await
            .ok()
    }
}

/// One accepted connection's place in the counts, given back when dropped.
struct ConnectionSlot {
    limits: Arc<NetworkLimits>,
    ip: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self.limits.counts();
        counts.total -= 1;
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
        drop(counts);
        self.limits.connection_closed.notify_waiters();
    }
}

/// Which listener a connection came in on.
#[derive(Clone)]
pub struct ListenerKind {
    /// Its name, upper case.
    pub name: Arc<str>,
    /// Named in `controller.listener.names`: it also carries the quorum's Raft RPCs.
    pub controller: bool,
    /// SSL and SASL_SSL listeners: the TLS every connection starts with.
    pub tls: Option<Arc<ListenerTls>>,
    /// SASL_PLAINTEXT and SASL_SSL listeners: how clients authenticate.
    pub sasl: Option<Arc<crate::sasl::SaslListenerConfig>>,
}

/// The TLS side of a listener: its acceptor, rebuilt when a dynamic `ssl.keystore.*` or
/// `ssl.truststore.*` update changes the listener's settings (new handshakes use it,
/// established connections keep theirs), and its principal mapping.
pub struct ListenerTls {
    /// The acceptor and the settings it was built from, swapped together.
    served: parking_lot::RwLock<(
        tokio_rustls::TlsAcceptor,
        Arc<moldau_security::tls::SslConfig>,
    )>,
    /// `ssl.principal.mapping.rules`: a client certificate's subject to a user name.
    principal_mapper: SslPrincipalMapper,
}

impl ListenerTls {
    pub fn new(
        ssl: &moldau_security::tls::SslConfig,
    ) -> Result<ListenerTls, moldau_security::tls::SslConfigError> {
        let acceptor = Self::acceptor_for(ssl)?;
        let principal_mapper =
            SslPrincipalMapper::parse(&ssl.principal_mapping_rules).map_err(|e| {
                moldau_security::tls::SslConfigError {
                    key: "ssl.principal.mapping.rules".into(),
                    message: e.to_string(),
                }
            })?;
        Ok(ListenerTls {
            served: parking_lot::RwLock::new((acceptor, Arc::new(ssl.clone()))),
            principal_mapper,
        })
    }

    fn acceptor_for(
        ssl: &moldau_security::tls::SslConfig,
    ) -> Result<tokio_rustls::TlsAcceptor, moldau_security::tls::SslConfigError> {
        let Some(key_store) = &ssl.key_store else {
            return Err(moldau_security::tls::SslConfigError {
                key: "ssl.keystore.location".into(),
                message: "a TLS listener needs a key store".into(),
            });
        };
        let resolver = moldau_security::tls::KeyStoreResolver::new(key_store)?;
        Ok(tokio_rustls::TlsAcceptor::from(
            ssl.server_config(resolver)?,
        ))
    }

    /// Serves `ssl` from the next handshake on.
    pub fn reconfigure(
        &self,
        ssl: moldau_security::tls::SslConfig,
    ) -> Result<(), moldau_security::tls::SslConfigError> {
        let acceptor = Self::acceptor_for(&ssl)?;
        *self.served.write() = (acceptor, Arc::new(ssl));
        Ok(())
    }

    /// The settings served now.
    pub fn current(&self) -> Arc<moldau_security::tls::SslConfig> {
        self.served.read().1.clone()
    }

    /// The principal of a TLS client: `User:ANONYMOUS` without a certificate, else its
    /// subject (as Java prints a distinguished name) through the mapping rules.
    fn principal(&self, certificate: Option<&[u8]>) -> Result<KafkaPrincipal, String> {
        let Some(der) = certificate else {
            return Ok(KafkaPrincipal::anonymous());
        };
        let name = distinguished_name(der).map_err(|e| e.to_string())?;
        let mapped = self
            .principal_mapper
            .apply(&name)
            .map_err(|e| e.to_string())?;
        Ok(KafkaPrincipal::user(mapped))
    }
}

/// Who is on the other end of a connection, once authenticated.
pub struct Session {
    pub principal: Arc<KafkaPrincipal>,
    /// Client quotas (KIP-219): a throttled answer mutes the connection for a while.
    pub mute: crate::quota_manager::ConnectionMute,
}

/// Accepts connections on one listener.
pub async fn accept_loop(
    state: Arc<BrokerState>,
    limits: Arc<NetworkLimits>,
    listener: Box<dyn crate::net::Listener>,
    kind: ListenerKind,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = async {
                limits.wait_for_slot().await;
                listener.accept().await
            } => match accepted {
                Ok((stream, peer)) => {
                    let Some(slot) = limits.register(peer.ip()) else {
                        tracing::info!(%peer, "closing connection: max.connections.per.ip reached");
                        continue;
                    };
                    connections.spawn(serve_connection(
                        state.clone(),
                        limits.clone(),
                        slot,
                        stream,
                        peer,
                        kind.clone(),
                        shutdown.clone(),
                    ));
                }
                Err(e) => {
                    tracing::warn!("accept failed, retrying in {ACCEPT_BACKOFF:?}: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    // Connections see the same signal: idle ones close at once, busy ones within the grace.
    let drained = tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(1), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("dropping {} connections at shutdown", connections.len());
        connections.shutdown().await;
    }
}

/// Why a connection stopped reading.
enum Stop {
    Closed,
    Idle,
    Shutdown,
}

async fn serve_connection(
    state: Arc<BrokerState>,
    limits: Arc<NetworkLimits>,
    _slot: ConnectionSlot,
    connection: crate::net::Connection,
    peer: SocketAddr,
    kind: ListenerKind,
    mut shutdown: watch::Receiver<bool>,
) {
    let idle = Duration::from_millis(limits.config.connections_max_idle_ms);
    let mut session = Session {
        principal: Arc::new(KafkaPrincipal::anonymous()),
        mute: Default::default(),
    };
    let connection = match &kind.tls {
        None => connection,
        // The handshake counts as idle time: a client that never finishes it is closed
        // like one that never sends a request.
        Some(tls) => {
            let acceptor = tls.served.read().0.clone();
            let handshake = tokio::select! {
                done = tokio::time::timeout(idle, crate::net::tls_accept(connection, &acceptor)) => done,
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            match handshake {
                Ok(Ok((connection, certificate))) => match tls.principal(certificate.as_deref()) {
                    Ok(principal) => {
                        session.principal = Arc::new(principal);
                        connection
                    }
                    Err(e) => {
                        tracing::info!(%peer, listener = %kind.name, "closing connection: no principal for the client certificate: {e}");
                        return;
                    }
                },
                Ok(Err(e)) => {
                    tracing::info!(%peer, listener = %kind.name, "closing connection: TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::info!(%peer, listener = %kind.name, "closing connection: TLS handshake not finished within connections.max.idle.ms");
                    return;
                }
            }
        }
    };
    let crate::net::Connection {
        reader: read_half,
        writer: write_half,
    } = connection;
    let mut reader = BufReader::with_capacity(SOCKET_BUFFER_BYTES, read_half);
    let mut writer = BufWriter::with_capacity(SOCKET_BUFFER_BYTES, write_half);
    let mut authenticator = kind
        .sasl
        .clone()
        .map(|config| crate::sasl::Authenticator::new(config, peer));
    loop {
        // Until a SASL client authenticated, frames are bounded by sasl.server.max.receive.size.
        let max_frame_bytes = match &authenticator {
            Some(auth) => auth.max_frame_bytes(state.config.socket_request_max_bytes),
            None => state.config.socket_request_max_bytes,
        };
        // Idle time counts from the last complete request, not from the last byte.
        let deadline = Instant::now() + idle;
        let read = read_frame(
            &mut reader,
            &limits,
            max_frame_bytes,
            deadline,
            &mut shutdown,
        );
        let (frame, permit) = match read.await {
            Ok(Some(read)) => read,
            Ok(None) => {
                tracing::warn!(%peer, "closing connection: frame size outside 0..={max_frame_bytes} (socket.request.max.bytes)");
                return;
            }
            Err(Stop::Idle) => {
                tracing::debug!(%peer, "closing idle connection (connections.max.idle.ms)");
                return;
            }
            Err(Stop::Closed | Stop::Shutdown) => return,
        };
        let frame = frame.freeze();
        // On a SASL listener the authenticator takes what comes before authentication.
        let mut close_after = None;
        let taken = match authenticator.as_mut() {
            Some(auth) if auth.takes(&frame) => Some(auth.handle(&state, frame.clone())),
            _ => None,
        };
        let handled = match taken {
            Some(AuthStep::Respond(response)) => {
                if let Some(principal) = authenticator.as_ref().and_then(|a| a.principal()) {
                    if *session.principal != *principal {
                        session.principal = Arc::new(principal.clone());
                    }
                }
                Outcome::Respond(response)
            }
            Some(AuthStep::RespondAndClose(response, delay)) => {
                close_after = Some(delay);
                Outcome::Respond(response)
            }
            Some(AuthStep::Close(reason)) => {
                tracing::info!(%peer, listener = %kind.name, "closing connection: {reason}");
                return;
            }
            Some(AuthStep::Serve) | None => {
                // A Produce is finished even if its client has gone: an acks=0 producer
                // may send and close at once, and Kafka appends what it read.
                let watch_client = frame.get(..2) != Some(&PRODUCE_API_KEY.to_be_bytes()[..]);
                tokio::select! {
                    outcome = api::handle_frame(&state, frame, peer, &kind, &session) => outcome,
                    _ = crate::net::peer_closed(reader.get_mut().as_mut()), if watch_client => return,
                    _ = shutdown_with_grace(&mut shutdown) => return,
                }
            }
        };
        // The request's bytes (records are slices of the frame) are gone once it is handled.
        drop(permit);
        let send = async {
            match handled {
                Outcome::Respond(response) => {
                    writer.write_u32(response.len() as u32).await?;
                    writer.write_all(&response).await?;
                }
                Outcome::NoResponse => {}
                Outcome::Close(reason) => {
                    tracing::debug!(%peer, "closing connection: {reason}");
                    writer.flush().await?;
                    return Ok(false);
                }
            }
            if !has_complete_frame(reader.buffer()) {
                writer.flush().await?;
            }
            Ok::<_, std::io::Error>(true)
        };
        // A client that does not read its responses is idle too.
        let sent = tokio::select! {
            sent = send => sent,
            _ = tokio::time::sleep(idle) => {
                tracing::debug!(%peer, "closing connection: responses not read (connections.max.idle.ms)");
                return;
            }
            _ = shutdown_with_grace(&mut shutdown) => return,
        };
        if !matches!(sent, Ok(true)) {
            return;
        }
        // Client quotas (KIP-219): a throttled client's answer is out at once; its
        // connection is then not read until the throttle time has passed.
        if let Some(until) = session.mute.take() {
            let flushed = tokio::select! {
                flushed = tokio::time::timeout(idle, writer.flush()) => matches!(flushed, Ok(Ok(()))),
                _ = shutdown.wait_for(|stop| *stop) => false,
            };
            if !flushed {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
        if let Some(delay) = close_after {
            // A failed authentication: the answer is out; closing waits a little, so a
            // client guessing passwords cannot try at full speed.
            let _ = writer.flush().await;
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
            return;
        }
    }
}

/// Reads one frame: its announced size is taken from the budget first, its buffer grows as
/// the bytes arrive. `Ok(None)`: the size prefix is out of bounds.
async fn read_frame(
    reader: &mut BufReader<Box<dyn crate::net::ReadHalf>>,
    limits: &NetworkLimits,
    max_frame_bytes: i32,
    deadline: Instant,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<(BytesMut, Option<OwnedSemaphorePermit>)>, Stop> {
    let read = async {
        let size = reader.read_i32().await.map_err(|_| Stop::Closed)?;
        if size < 0 || size > max_frame_bytes {
            return Ok(None);
        }
        let size = size as usize;
        // The whole frame is reserved before its body is read, as Kafka's memory pool
        // does: a connection holding part of the budget can always finish its frame, so
        // clients that together announce more than the budget take turns instead of each
        // holding a share and all waiting (a deadlock until connections.max.idle.ms).
        let permit = if size > 0 {
            Some(limits.reserve(size).await.ok_or(Stop::Closed)?)
        } else {
            None
        };
        let mut frame = BytesMut::with_capacity(size.min(READ_CHUNK_BYTES));
        while frame.len() < size {
            let chunk = (size - frame.len()).min(READ_CHUNK_BYTES);
            let end = frame.len() + chunk;
            frame.reserve(chunk);
            while frame.len() < end {
                let mut limited = (&mut *reader).take((end - frame.len()) as u64);
                if limited
                    .read_buf(&mut frame)
                    .await
                    .map_err(|_| Stop::Closed)?
                    == 0
                {
                    return Err(Stop::Closed);
                }
            }
        }
        Ok(Some((frame, permit)))
    };
    tokio::select! {
        read = read => read,
        _ = tokio::time::sleep_until(deadline) => Err(Stop::Idle),
        _ = shutdown.wait_for(|stop| *stop) => Err(Stop::Shutdown),
    }
}

async fn shutdown_with_grace(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        // The broker was dropped without a shutdown: nothing to wait for.
        return;
    }
    tokio::time::sleep(SHUTDOWN_GRACE).await;
}

/// Whether the bytes already read hold another whole request (then its response is written
/// together with this one).
fn has_complete_frame(buffered: &[u8]) -> bool {
    if buffered.len() < 4 {
        return false;
    }
    let size = i32::from_be_bytes([buffered[0], buffered[1], buffered[2], buffered[3]]);
    size >= 0 && buffered.len() >= 4 + size as usize
}
