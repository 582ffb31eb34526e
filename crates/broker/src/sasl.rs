//! SASL on SASL_PLAINTEXT and SASL_SSL listeners, as Kafka's SaslServerAuthenticator:
//! before a connection is authenticated it may send only ApiVersions, SaslHandshake and
//! then the mechanism's tokens (in SaslAuthenticate requests after a v1 handshake, as
//! bare size-prefixed tokens after a v0 one). Anything else closes it. A failed
//! authentication is answered with SASL_AUTHENTICATION_FAILED and a message, then the
//! connection is closed after `connection.failed.authentication.delay.ms`.
//!
//! Re-authentication (KIP-368): with `connections.max.reauth.ms`, a successful
//! authentication tells the client its session lifetime; the client sends SaslHandshake
//! again before it ends, with the same mechanism and as the same principal. A connection
//! whose session ended is closed at its next request.
//!
//! The listener's settings (mechanisms, PLAIN users, JAAS entries, re-authentication) are
//! read here from Kafka's keys: `[listener.name.<l>.]sasl.enabled.mechanisms`,
//! `listener.name.<l>.<mechanism>.sasl.jaas.config`, `[listener.name.<l>.[<mechanism>.]]
//! connections.max.reauth.ms`, `sasl.server.max.receive.size`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, RequestKind, ResponseKind, SaslAuthenticateResponse,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use moldau_security::jaas::{parse_jaas_config, JaasEntry, LoginCredentials};
use moldau_security::oauthbearer::{OAuthBearerError, OAuthBearerServer, OAuthBearerValidator};
use moldau_security::plain::PlainUsers;
use moldau_security::principal::KafkaPrincipal;
use moldau_security::scram::{SaslError, ScramCredential, ScramMechanism, ScramServer};
use tokio::time::Instant;

use crate::api::DecodedRequest;
use crate::config::ConfigError;
use crate::state::BrokerState;

const SASL_AUTHENTICATION_FAILED: i16 = 58;
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;

/// A SASL mechanism Moldau serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SaslMechanism {
    Plain,
    Scram(ScramMechanism),
    OAuthBearer,
}

impl SaslMechanism {
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Scram(m) => m.mechanism_name(),
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    pub fn parse(name: &str) -> Option<SaslMechanism> {
        match name {
            "PLAIN" => return Some(SaslMechanism::Plain),
            "OAUTHBEARER" => return Some(SaslMechanism::OAuthBearer),
            _ => {}
        }
        ScramMechanism::from_mechanism_name(name).map(SaslMechanism::Scram)
    }

    fn login_module(self) -> &'static str {
        match self {
            SaslMechanism::Plain => moldau_security::jaas::PLAIN_LOGIN_MODULE,
            SaslMechanism::Scram(_) => moldau_security::jaas::SCRAM_LOGIN_MODULE,
            SaslMechanism::OAuthBearer => moldau_security::jaas::OAUTHBEARER_LOGIN_MODULE,
        }
    }
}

/// How one SASL listener authenticates.
#[derive(Clone, Debug)]
pub struct SaslListenerConfig {
    /// `sasl.enabled.mechanisms`, in the order given (the handshake lists them so).
    pub enabled_mechanisms: Vec<SaslMechanism>,
    /// PLAIN's users (`user_<name>` options of the listener's PLAIN JAAS entry).
    pub plain_users: Option<Arc<PlainUsers>>,
    /// OAUTHBEARER's token validator (JWKS, or the unsecured development mode).
    pub oauthbearer: Option<Arc<OAuthBearerValidator>>,
    /// The listener's JAAS entry per mechanism: this node's own credentials when it
    /// connects to that listener of its peers.
    pub jaas: BTreeMap<SaslMechanism, JaasEntry>,
    /// `connections.max.reauth.ms` per mechanism; 0 turns re-authentication off.
    pub connections_max_reauth_ms: BTreeMap<SaslMechanism, u64>,
    /// `sasl.server.max.receive.size`: the largest frame before authentication.
    pub max_receive_size: usize,
    /// `connection.failed.authentication.delay.ms`.
    pub failed_authentication_delay_ms: u64,
}

/// Kafka's default mechanism list is GSSAPI, which needs Kerberos: Moldau refuses it.
const DEFAULT_ENABLED_MECHANISMS: &str = "GSSAPI";

impl SaslListenerConfig {
    /// Reads listener `name`'s SASL settings (`name` upper case).
    pub fn load(
        props: &BTreeMap<String, String>,
        name: &str,
    ) -> Result<SaslListenerConfig, ConfigError> {
        let prefix = format!("listener.name.{}.", name.to_ascii_lowercase());
        let lookup = |key: &str| -> Option<(String, &str)> {
            let prefixed = format!("{prefix}{key}");
            props
                .get(&prefixed)
                .map(|v| (prefixed, v.as_str()))
                .or_else(|| props.get(key).map(|v| (key.to_string(), v.as_str())))
        };
        let (mechanisms_key, mechanisms_value) = lookup("sasl.enabled.mechanisms")
            .unwrap_or_else(|| ("sasl.enabled.mechanisms".into(), DEFAULT_ENABLED_MECHANISMS));
        let mut enabled_mechanisms = Vec::new();
        for item in mechanisms_value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let Some(mechanism) = SaslMechanism::parse(item) else {
                return Err(ConfigError::InvalidValue {
                    key: mechanisms_key,
                    value: mechanisms_value.to_string(),
                    reason: format!(
                        "listener {name}: SASL mechanism {item} is not supported (PLAIN, \
                         SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER are; GSSAPI, Kafka's default, needs \
                         Kerberos)"
                    ),
                });
            };
            if !enabled_mechanisms.contains(&mechanism) {
                enabled_mechanisms.push(mechanism);
            }
        }
        if enabled_mechanisms.is_empty() {
            return Err(ConfigError::InvalidValue {
                key: mechanisms_key,
                value: mechanisms_value.to_string(),
                reason: format!("listener {name} uses SASL but enables no mechanism"),
            });
        }
        let mut jaas = BTreeMap::new();
        let mut connections_max_reauth_ms = BTreeMap::new();
        let mut plain_users = None;
        let mut oauthbearer = None;
        for &mechanism in &enabled_mechanisms {
            let mechanism_prefix = format!("{prefix}{}.", mechanism.name().to_ascii_lowercase());
            let jaas_key = format!("{mechanism_prefix}sasl.jaas.config");
            if let Some(text) = props.get(&jaas_key) {
                let entry = parse_jaas_config(text).map_err(|e| ConfigError::InvalidValue {
                    key: jaas_key.clone(),
                    value: "[hidden]".into(),
                    reason: e.to_string(),
                })?;
                entry
                    .require_login_module(mechanism.login_module())
                    .map_err(|e| ConfigError::InvalidValue {
                        key: jaas_key.clone(),
                        value: "[hidden]".into(),
                        reason: e.to_string(),
                    })?;
                jaas.insert(mechanism, entry);
            }
            if mechanism == SaslMechanism::Plain {
                let Some(entry) = jaas.get(&mechanism) else {
                    return Err(ConfigError::InvalidValue {
                        key: jaas_key,
                        value: String::new(),
                        reason: format!(
                            "listener {name} enables PLAIN: its users are the user_<name>=\
                             \"<password>\" options of this JAAS config (PlainLoginModule)"
                        ),
                    });
                };
                let users =
                    PlainUsers::from_jaas(entry).map_err(|e| ConfigError::InvalidValue {
                        key: jaas_key.clone(),
                        value: "[hidden]".into(),
                        reason: e.to_string(),
                    })?;
                plain_users = Some(Arc::new(users));
            }
            if mechanism == SaslMechanism::OAuthBearer {
                oauthbearer = Some(oauthbearer_validator(
                    props,
                    name,
                    &prefix,
                    &mechanism_prefix,
                    jaas.get(&mechanism),
                )?);
            }
            let reauth_key = format!("{mechanism_prefix}connections.max.reauth.ms");
            let (key, value) = match props.get(&reauth_key) {
                Some(v) => (reauth_key, v.as_str()),
                None => lookup("connections.max.reauth.ms")
                    .unwrap_or_else(|| ("connections.max.reauth.ms".into(), "0")),
            };
            let ms: i64 = value
                .trim()
                .parse()
                .map_err(|_| ConfigError::InvalidValue {
                    key: key.clone(),
                    value: value.to_string(),
                    reason: "not a number".into(),
                })?;
            if ms < 0 {
                return Err(ConfigError::InvalidValue {
                    key,
                    value: value.to_string(),
                    reason: "must be at least 0".into(),
                });
            }
            connections_max_reauth_ms.insert(mechanism, ms as u64);
        }
        let number = |key: &str, default: i64, min: i64| -> Result<i64, ConfigError> {
            match props.get(key) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<i64>() {
                    Ok(n) if n >= min => Ok(n),
                    _ => Err(ConfigError::InvalidValue {
                        key: key.into(),
                        value: v.clone(),
                        reason: format!("must be a number of at least {min}"),
                    }),
                },
            }
        };
        let max_receive_size = number("sasl.server.max.receive.size", 524_288, 1)?;
        let failed_authentication_delay_ms =
            number("connection.failed.authentication.delay.ms", 100, 0)?;
        Ok(SaslListenerConfig {
            enabled_mechanisms,
            plain_users,
            oauthbearer,
            jaas,
            connections_max_reauth_ms,
            max_receive_size: max_receive_size.min(i32::MAX as i64) as usize,
            failed_authentication_delay_ms: failed_authentication_delay_ms as u64,
        })
    }

    /// This node's own credentials for `mechanism` on this listener (the `username` and
    /// `password` options of its JAAS entry), for connecting to peers.
    pub fn client_credentials(&self, mechanism: SaslMechanism) -> Result<LoginCredentials, String> {
        let entry = self.jaas.get(&mechanism).ok_or_else(|| {
            format!(
                "no JAAS config for {} (listener.name.<listener>.{}.sasl.jaas.config)",
                mechanism.name(),
                mechanism.name().to_ascii_lowercase()
            )
        })?;
        entry
            .client_credentials(mechanism.login_module())
            .map_err(|e| e.to_string())
    }
}

/// What the connection does with a frame the authenticator took.
pub enum AuthStep {
    /// Write this response (a whole frame body, without the size) and go on.
    Respond(BytesMut),
    /// The frame is a request to serve as usual (ApiVersions before authentication).
    Serve,
    /// Write this response, wait, then close (a failed authentication).
    RespondAndClose(BytesMut, Duration),
    /// Close without an answer (a request out of order, a malformed token).
    Close(String),
}

enum Exchange {
    Plain,
    Scram(ScramServer),
    OAuthBearer(OAuthBearerServer),
}

enum Phase {
    /// Waiting for ApiVersions or SaslHandshake.
    Handshake,
    /// A mechanism was chosen; tokens come in SaslAuthenticate (v1 handshake) or bare (v0).
    Authenticate {
        mechanism: SaslMechanism,
        exchange: Box<Exchange>,
        headers: bool,
    },
    /// Authenticated; `expires` is the end of the session (re-authentication).
    Complete { expires: Option<Instant> },
}

/// One connection's SASL state.
pub struct Authenticator {
    config: Arc<SaslListenerConfig>,
    phase: Phase,
    /// The principal authenticated first (re-authentication must keep it) and its mechanism.
    authenticated: Option<(KafkaPrincipal, SaslMechanism)>,
    peer: std::net::SocketAddr,
}

impl Authenticator {
    pub fn new(config: Arc<SaslListenerConfig>, peer: std::net::SocketAddr) -> Authenticator {
        Authenticator {
            config,
            phase: Phase::Handshake,
            authenticated: None,
            peer,
        }
    }

    /// The principal once authenticated (re-authentication in progress included).
    pub fn principal(&self) -> Option<&KafkaPrincipal> {
        self.authenticated.as_ref().map(|(p, _)| p)
    }

    /// The largest frame to read next: `sasl.server.max.receive.size` until authenticated.
    pub fn max_frame_bytes(&self, otherwise: i32) -> i32 {
        match self.phase {
            Phase::Complete { .. } => otherwise,
            _ => self.config.max_receive_size.min(i32::MAX as usize) as i32,
        }
    }

    /// Whether this frame is the authenticator's: everything until authenticated, a
    /// SaslHandshake that starts a re-authentication, and any request once the session
    /// ended (it is refused).
    pub fn takes(&self, frame: &[u8]) -> bool {
        match self.phase {
            Phase::Complete { expires } => {
                expires.is_some_and(|at| Instant::now() >= at)
                    || frame.get(..2) == Some(&(ApiKey::SaslHandshake as i16).to_be_bytes()[..])
            }
            _ => true,
        }
    }

    /// Handles one frame the authenticator takes.
    pub fn handle(&mut self, state: &BrokerState, frame: Bytes) -> AuthStep {
        match std::mem::replace(&mut self.phase, Phase::Handshake) {
            Phase::Complete { expires } => {
                if expires.is_some_and(|at| Instant::now() >= at) {
                    return AuthStep::Close(
                        "the SASL session expired (connections.max.reauth.ms) without \
                         re-authentication"
                            .into(),
                    );
                }
                // A SaslHandshake: re-authentication starts.
                self.handshake(frame)
            }
            Phase::Handshake => self.handshake(frame),
            Phase::Authenticate {
                mechanism,
                exchange,
                headers,
            } => self.authenticate(state, frame, mechanism, exchange, headers),
        }
    }

    fn reauthenticating(&self) -> bool {
        self.authenticated.is_some()
    }

    fn handshake(&mut self, frame: Bytes) -> AuthStep {
        match peek_api_key(&frame) {
            Ok(ApiKey::ApiVersions) if !self.reauthenticating() => {
                self.phase = Phase::Handshake;
                AuthStep::Serve
            }
            Ok(ApiKey::SaslHandshake) => {
                let (header, request) = match decode(frame) {
                    Ok((header, RequestKind::SaslHandshake(request))) => (header, request),
                    Ok(_) => return AuthStep::Close("not a SaslHandshake".into()),
                    Err(reason) => return AuthStep::Close(reason),
                };
                let version = header.request_api_version;
                let enabled: Vec<StrBytes> = self
                    .config
                    .enabled_mechanisms
                    .iter()
                    .map(|m| StrBytes::from_static_str(m.name()))
                    .collect();
                let chosen = SaslMechanism::parse(request.mechanism.as_str())
                    .filter(|m| self.config.enabled_mechanisms.contains(m));
                let Some(mechanism) = chosen else {
                    let response = SaslHandshakeResponse::default()
                        .with_error_code(UNSUPPORTED_SASL_MECHANISM)
                        .with_mechanisms(enabled);
                    tracing::info!(peer = %self.peer, "failed authentication: unsupported SASL mechanism {}", request.mechanism.as_str());
                    return self.fail(encode(&header, ResponseKind::SaslHandshake(response)));
                };
                if let Some((_, first)) = &self.authenticated {
                    if *first != mechanism {
                        // Kafka answers the handshake, then fails the re-authentication.
                        tracing::info!(peer = %self.peer, "failed re-authentication: mechanism changed from {} to {}", first.name(), mechanism.name());
                        return AuthStep::Close(format!(
                            "SASL mechanism changed from {} to {} in re-authentication",
                            first.name(),
                            mechanism.name()
                        ));
                    }
                }
                let response = SaslHandshakeResponse::default().with_mechanisms(enabled);
                let exchange = match mechanism {
                    SaslMechanism::Plain => Exchange::Plain,
                    SaslMechanism::Scram(m) => Exchange::Scram(ScramServer::new(m)),
                    SaslMechanism::OAuthBearer => match &self.config.oauthbearer {
                        Some(validator) => {
                            Exchange::OAuthBearer(OAuthBearerServer::new(validator.clone()))
                        }
                        None => return AuthStep::Close("OAUTHBEARER has no validator".into()),
                    },
                };
                self.phase = Phase::Authenticate {
                    mechanism,
                    exchange: Box::new(exchange),
                    headers: version >= 1,
                };
                encode(&header, ResponseKind::SaslHandshake(response))
            }
            Ok(other) => AuthStep::Close(format!(
                "Unexpected Kafka request of type {other:?} during SASL handshake."
            )),
            Err(reason) => AuthStep::Close(reason),
        }
    }

    fn authenticate(
        &mut self,
        state: &BrokerState,
        frame: Bytes,
        mechanism: SaslMechanism,
        mut exchange: Box<Exchange>,
        headers: bool,
    ) -> AuthStep {
        let (header, version, token) = if headers {
            match peek_api_key(&frame) {
                Ok(ApiKey::SaslAuthenticate) => {}
                Ok(api_key) => {
                    return AuthStep::Close(format!(
                        "Unexpected Kafka request of type {api_key:?} during SASL authentication."
                    ))
                }
                Err(reason) => return AuthStep::Close(reason),
            }
            match decode(frame) {
                Ok((header, RequestKind::SaslAuthenticate(request))) => {
                    let version = header.request_api_version;
                    (Some(header), version, request.auth_bytes)
                }
                Ok(_) => return AuthStep::Close("not a SaslAuthenticate".into()),
                Err(reason) => return AuthStep::Close(reason),
            }
        } else {
            (None, 0, frame)
        };
        // OAUTHBEARER: the token's expiry (ms since the epoch), which bounds the session.
        let mut token_expiration: Option<Option<i64>> = None;
        let result: Result<(Vec<u8>, Option<String>), Failure> = match exchange.as_mut() {
            Exchange::Plain => {
                let users = self.config.plain_users.as_deref();
                match users {
                    Some(users) => moldau_security::plain::authenticate(users, &token)
                        .map(|user| (Vec::new(), Some(user)))
                        .map_err(Failure::Sasl),
                    None => Err(Failure::Sasl(SaslError::InvalidUsernameOrPassword)),
                }
            }
            Exchange::Scram(server) => match server.state() {
                moldau_security::scram::ScramServerState::ReceiveClientFirstMessage => {
                    let mechanism = server.mechanism();
                    server
                        .handle_client_first(&token, |user| {
                            scram_credential(state, user, mechanism)
                        })
                        .map(|first| (first, None))
                        .map_err(Failure::Sasl)
                }
                _ => server
                    .handle_client_final(&token)
                    .map(|(last, user)| (last, Some(user)))
                    .map_err(Failure::Sasl),
            },
            Exchange::OAuthBearer(server) => match server.evaluate_response(&token) {
                Ok(challenge) if server.is_complete() => {
                    let user = server.principal_name().map(str::to_string);
                    token_expiration = Some(server.credential_expiration_ms());
                    Ok((challenge, user))
                }
                Ok(challenge) => Ok((challenge, None)),
                Err(e) => Err(Failure::OAuthBearer(e)),
            },
        };
        match result {
            Ok((response_token, user)) => {
                let mut lifetime_ms = 0i64;
                if let Some(user) = user {
                    let principal = KafkaPrincipal::user(user);
                    if let Some((first, _)) = &self.authenticated {
                        if *first != principal {
                            tracing::info!(peer = %self.peer, "failed re-authentication: principal changed from {first} to {principal}");
                            return AuthStep::Close(format!(
                                "Cannot change principals during re-authentication from {first}: {principal}"
                            ));
                        }
                    }
                    let reauth_ms = self
                        .config
                        .connections_max_reauth_ms
                        .get(&mechanism)
                        .copied()
                        .unwrap_or(0);
                    // Kafka gives a session lifetime only to clients that can re-authenticate
                    // (SaslAuthenticate v1 and later).
                    // KIP-368: the session ends with the reauth bound, or with the token
                    // when it expires sooner.
                    let reauth_ms = reauth_ms.min(i64::MAX as u64) as i64;
                    let session_ms = match token_expiration {
                        Some(Some(expires_ms)) if reauth_ms > 0 => {
                            let left = expires_ms - moldau_security::oauthbearer::now_ms();
                            Some(left.min(reauth_ms).max(0))
                        }
                        _ => (reauth_ms > 0).then_some(reauth_ms),
                    }
                    .filter(|_| version >= 1);
                    let expires = session_ms
                        .map(|ms| Instant::now() + Duration::from_millis(ms.max(0) as u64));
                    if let Some(ms) = session_ms {
                        lifetime_ms = ms;
                    }
                    tracing::debug!(peer = %self.peer, %principal, mechanism = mechanism.name(), "authenticated");
                    self.authenticated = Some((principal, mechanism));
                    self.phase = Phase::Complete { expires };
                } else {
                    self.phase = Phase::Authenticate {
                        mechanism,
                        exchange,
                        headers,
                    };
                }
                match header {
                    Some(header) => {
                        let response = SaslAuthenticateResponse::default()
                            .with_auth_bytes(Bytes::from(response_token))
                            .with_session_lifetime_ms(lifetime_ms);
                        encode(&header, ResponseKind::SaslAuthenticate(response))
                    }
                    // v0: bare size-prefixed tokens (an empty one included, as Kafka).
                    None => AuthStep::Respond(BytesMut::from(&response_token[..])),
                }
            }
            Err(e) if e.is_illegal_state() => AuthStep::Close(e.to_string()),
            Err(e) => {
                let reauthenticating = self.reauthenticating();
                let message = e.error_message(reauthenticating);
                match e.reason() {
                    Some(reason) => {
                        tracing::info!(peer = %self.peer, mechanism = mechanism.name(), "failed authentication: {message} ({reason})")
                    }
                    None => {
                        tracing::info!(peer = %self.peer, mechanism = mechanism.name(), "failed authentication: {message}")
                    }
                }
                match header {
                    Some(header) => {
                        let response = SaslAuthenticateResponse::default()
                            .with_error_code(SASL_AUTHENTICATION_FAILED)
                            .with_error_message(Some(StrBytes::from_string(message)));
                        self.fail(encode(&header, ResponseKind::SaslAuthenticate(response)))
                    }
                    None => AuthStep::Close(message),
                }
            }
        }
    }

    /// A refusal's answer, then the close after `connection.failed.authentication.delay.ms`.
    fn fail(&mut self, answer: AuthStep) -> AuthStep {
        match answer {
            AuthStep::Respond(response) => AuthStep::RespondAndClose(
                response,
                Duration::from_millis(self.config.failed_authentication_delay_ms),
            ),
            other => other,
        }
    }
}

/// A failed step of any mechanism.
enum Failure {
    Sasl(SaslError),
    OAuthBearer(OAuthBearerError),
}

impl Failure {
    fn is_illegal_state(&self) -> bool {
        match self {
            Failure::Sasl(e) => e.is_illegal_state(),
            Failure::OAuthBearer(e) => e.is_illegal_state(),
        }
    }

    fn error_message(&self, reauthentication: bool) -> String {
        match self {
            Failure::Sasl(e) => e.error_message(reauthentication),
            Failure::OAuthBearer(e) => e.error_message(reauthentication),
        }
    }

    /// The detailed cause, for the log only.
    fn reason(&self) -> Option<String> {
        match self {
            Failure::Sasl(e) => e.reason().map(|r| r.to_string()),
            Failure::OAuthBearer(e) => Some(e.to_string()),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Sasl(e) => e.fmt(f),
            Failure::OAuthBearer(e) => e.fmt(f),
        }
    }
}

/// A listener's OAUTHBEARER validator. Settings are looked up as
/// `listener.name.<l>.oauthbearer.<key>`, then `listener.name.<l>.<key>`, then `<key>`.
/// Kafka validates unsigned tokens when nothing else is configured; Moldau does only when
/// the operator names the unsecured handler explicitly (fail closed).
fn oauthbearer_validator(
    props: &BTreeMap<String, String>,
    listener: &str,
    listener_prefix: &str,
    mechanism_prefix: &str,
    jaas: Option<&JaasEntry>,
) -> Result<Arc<OAuthBearerValidator>, ConfigError> {
    use moldau_security::oauthbearer as ob;
    let get = |key: &str| -> Option<String> {
        props
            .get(&format!("{mechanism_prefix}{key}"))
            .or_else(|| props.get(&format!("{listener_prefix}{key}")))
            .or_else(|| props.get(key))
            .cloned()
    };
    let handler_key = format!(
        "{mechanism_prefix}{}",
        ob::SASL_SERVER_CALLBACK_HANDLER_CLASS
    );
    let handler = get(ob::SASL_SERVER_CALLBACK_HANDLER_CLASS);
    let jwks = get(ob::SASL_OAUTHBEARER_JWKS_ENDPOINT_URL);
    if handler.is_none() && jwks.is_none() {
        return Err(ConfigError::InvalidValue {
            key: handler_key,
            value: String::new(),
            reason: format!(
                "listener {listener} enables OAUTHBEARER with no way to verify tokens: set \
                 sasl.oauthbearer.jwks.endpoint.url (KIP-768), or, for development only, name \
                 {} to accept unsigned tokens",
                ob::UNSECURED_VALIDATOR_CALLBACK_HANDLER
            ),
        });
    }
    let settings =
        ob::OAuthBearerSettings::from_props(get, jaas).map_err(|e| ConfigError::InvalidValue {
            key: e.key.clone(),
            value: String::new(),
            reason: format!("listener {listener}: {}", e.message),
        })?;
    if settings.is_unsecured() {
        tracing::warn!(
            listener,
            "OAUTHBEARER accepts unsigned tokens (the unsecured validator): for development only"
        );
    }
    ob::OAuthBearerValidator::new(&settings)
        .map(Arc::new)
        .map_err(|e| ConfigError::InvalidValue {
            key: e.key.clone(),
            value: String::new(),
            reason: format!("listener {listener}: {}", e.message),
        })
}

/// The credential of `user` for `mechanism` in the metadata image.
fn scram_credential(
    state: &BrokerState,
    user: &str,
    mechanism: ScramMechanism,
) -> Option<ScramCredential> {
    let image = state.image();
    let stored = image.scram_credential(user, mechanism.type_code())?;
    Some(ScramCredential {
        salt: stored.salt.to_vec(),
        stored_key: stored.stored_key.to_vec(),
        server_key: stored.server_key.to_vec(),
        iterations: stored.iterations,
    })
}

/// The api key of a frame, read before anything else is parsed: as Kafka, a request the
/// authenticator does not take is refused without decoding its body.
fn peek_api_key(frame: &[u8]) -> Result<ApiKey, String> {
    let raw = match frame {
        [a, b, ..] => i16::from_be_bytes([*a, *b]),
        _ => return Err("request without a header during SASL authentication".into()),
    };
    ApiKey::try_from(raw).map_err(|_| format!("unknown api key {raw} during SASL authentication"))
}

/// Header and body by the broker's one request decoder (version checks and decode bounds
/// included).
fn decode(frame: Bytes) -> Result<(RequestHeader, RequestKind), String> {
    match crate::api::decode_request(frame)? {
        DecodedRequest::Request { header, body, .. } => Ok((header, body)),
        DecodedRequest::UnsupportedApiVersions { .. } => {
            Err("ApiVersions during SASL authentication".into())
        }
    }
}

/// A response frame body, by the broker's one response encoder.
fn encode(header: &RequestHeader, response: ResponseKind) -> AuthStep {
    let api_key = match &response {
        ResponseKind::SaslHandshake(_) => ApiKey::SaslHandshake,
        _ => ApiKey::SaslAuthenticate,
    };
    match crate::api::encode_kind(
        header.correlation_id,
        api_key,
        header.request_api_version,
        &response,
    ) {
        crate::api::Outcome::Respond(bytes) => AuthStep::Respond(bytes),
        crate::api::Outcome::Close(reason) => AuthStep::Close(reason),
        crate::api::Outcome::NoResponse => AuthStep::Close("no response".into()),
    }
}
