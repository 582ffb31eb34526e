//! SASL/OAUTHBEARER (RFC 7628) as Kafka 4.1 does it (KIP-255, KIP-768): the client's initial
//! response (`OAuthBearerClientInitialResponse`), the server exchange (`OAuthBearerSaslServer`,
//! with its two-step failure) and the two token validators a broker listener can have:
//!
//! - **secured**, Kafka's `OAuthBearerValidatorCallbackHandler` with `BrokerJwtValidator`
//!   (KIP-768): a signed JWT (JWS) verified with a key of a JWKS, then jose4j's and Kafka's
//!   claim checks (`exp` and `iat` required, `nbf`, `sasl.oauthbearer.clock.skew.seconds`,
//!   expected audience and issuer, the subject and scope claims). The JWKS is a `file:`
//!   document or an `http:`/`https:` endpoint, refreshed every
//!   `sasl.oauthbearer.jwks.endpoint.refresh.ms` by a background thread, and at once (at most
//!   once a minute per key id) when a token names a key id the set does not have;
//! - **unsecured**, Kafka's `OAuthBearerUnsecuredValidatorCallbackHandler`: an unsigned JWT
//!   (`alg: none`) whose claims are believed, with the `unsecuredValidator*` options of the
//!   listener's JAAS entry. For development only: anyone can make such a token.
//!
//! [`OAuthBearerSettings::from_props`] reads the broker keys and tells which validator a
//! listener has ([`OAuthBearerSettings::is_unsecured`]): the broker decides whether to allow
//! an unsecured one. [`OAuthBearerValidator`] is made once per listener and shared by its
//! connections' [`OAuthBearerServer`]s. The client side ([`ClientInitialResponse`],
//! [`OAuthBearerClient`], [`unsecured_token`]) serves tests and tools.
//!
//! Kafka 4.x also requires the JVM system property `org.apache.kafka.sasl.oauthbearer.allowed.urls`
//! to list the JWKS URL. There is no JVM here: any `file:`, `http:` or `https:` URL the
//! broker configuration names is used.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

use crate::jaas::{JaasEntry, OAUTHBEARER_LOGIN_MODULE};
use crate::tls::{SslConfig, SslProps};

/// The SASL mechanism name.
pub const OAUTHBEARER_MECHANISM: &str = "OAUTHBEARER";

/// The broker key naming the listener's server callback handler (Kafka reads it with the
/// `listener.name.<listener>.oauthbearer.` prefix).
pub const SASL_SERVER_CALLBACK_HANDLER_CLASS: &str = "sasl.server.callback.handler.class";
pub const SASL_OAUTHBEARER_JWKS_ENDPOINT_URL: &str = "sasl.oauthbearer.jwks.endpoint.url";
pub const SASL_OAUTHBEARER_JWKS_ENDPOINT_REFRESH_MS: &str =
    "sasl.oauthbearer.jwks.endpoint.refresh.ms";
pub const SASL_OAUTHBEARER_JWKS_ENDPOINT_RETRY_BACKOFF_MS: &str =
    "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms";
pub const SASL_OAUTHBEARER_JWKS_ENDPOINT_RETRY_BACKOFF_MAX_MS: &str =
    "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms";
pub const SASL_OAUTHBEARER_EXPECTED_AUDIENCE: &str = "sasl.oauthbearer.expected.audience";
pub const SASL_OAUTHBEARER_EXPECTED_ISSUER: &str = "sasl.oauthbearer.expected.issuer";
pub const SASL_OAUTHBEARER_CLOCK_SKEW_SECONDS: &str = "sasl.oauthbearer.clock.skew.seconds";
pub const SASL_OAUTHBEARER_SCOPE_CLAIM_NAME: &str = "sasl.oauthbearer.scope.claim.name";
pub const SASL_OAUTHBEARER_SUB_CLAIM_NAME: &str = "sasl.oauthbearer.sub.claim.name";
/// KIP-1139 (Kafka 4.1): the JWT validator of `OAuthBearerValidatorCallbackHandler`.
pub const SASL_OAUTHBEARER_JWT_VALIDATOR_CLASS: &str = "sasl.oauthbearer.jwt.validator.class";

/// The broker keys [`OAuthBearerSettings::from_props`] reads.
pub const SERVER_CONFIG_KEYS: &[&str] = &[
    SASL_SERVER_CALLBACK_HANDLER_CLASS,
    SASL_OAUTHBEARER_JWKS_ENDPOINT_URL,
    SASL_OAUTHBEARER_JWKS_ENDPOINT_REFRESH_MS,
    SASL_OAUTHBEARER_JWKS_ENDPOINT_RETRY_BACKOFF_MS,
    SASL_OAUTHBEARER_JWKS_ENDPOINT_RETRY_BACKOFF_MAX_MS,
    SASL_OAUTHBEARER_EXPECTED_AUDIENCE,
    SASL_OAUTHBEARER_EXPECTED_ISSUER,
    SASL_OAUTHBEARER_CLOCK_SKEW_SECONDS,
    SASL_OAUTHBEARER_SCOPE_CLAIM_NAME,
    SASL_OAUTHBEARER_SUB_CLAIM_NAME,
    SASL_OAUTHBEARER_JWT_VALIDATOR_CLASS,
];

pub const DEFAULT_JWKS_ENDPOINT_REFRESH_MS: i64 = 60 * 60 * 1000;
pub const DEFAULT_JWKS_ENDPOINT_RETRY_BACKOFF_MS: i64 = 100;
pub const DEFAULT_JWKS_ENDPOINT_RETRY_BACKOFF_MAX_MS: i64 = 10_000;
pub const DEFAULT_CLOCK_SKEW_SECONDS: i32 = 30;
pub const DEFAULT_SCOPE_CLAIM_NAME: &str = "scope";
pub const DEFAULT_SUB_CLAIM_NAME: &str = "sub";

/// Kafka's secured server callback handler (KIP-768).
pub const VALIDATOR_CALLBACK_HANDLER: &str =
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler";
/// Its older name (deprecated since Kafka 3.4), accepted for old configurations.
pub const DEPRECATED_VALIDATOR_CALLBACK_HANDLER: &str =
    "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerValidatorCallbackHandler";
/// Kafka's unsecured server callback handler (its default for OAUTHBEARER).
pub const UNSECURED_VALIDATOR_CALLBACK_HANDLER: &str =
    "org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler";
/// The default `sasl.oauthbearer.jwt.validator.class` (a `BrokerJwtValidator` when a JWKS URL
/// is set).
pub const DEFAULT_JWT_VALIDATOR: &str =
    "org.apache.kafka.common.security.oauthbearer.DefaultJwtValidator";
pub const BROKER_JWT_VALIDATOR: &str =
    "org.apache.kafka.common.security.oauthbearer.BrokerJwtValidator";

/// The unsecured validator's JAAS options (`OAuthBearerUnsecuredValidatorCallbackHandler`).
pub const UNSECURED_VALIDATOR_PRINCIPAL_CLAIM_NAME: &str = "unsecuredValidatorPrincipalClaimName";
pub const UNSECURED_VALIDATOR_SCOPE_CLAIM_NAME: &str = "unsecuredValidatorScopeClaimName";
pub const UNSECURED_VALIDATOR_REQUIRED_SCOPE: &str = "unsecuredValidatorRequiredScope";
pub const UNSECURED_VALIDATOR_ALLOWABLE_CLOCK_SKEW_MS: &str =
    "unsecuredValidatorAllowableClockSkewMs";

/// The reserved key of the initial response that carries the token (not an extension).
pub const AUTH_KEY: &str = "auth";

/// RFC 7628's `kvsep`: separates the initial response's key/value pairs, and is the whole of
/// the client's answer to the server's error challenge.
pub const KVSEP: u8 = 0x01;

const STATUS_INVALID_TOKEN: &str = "invalid_token";
const STATUS_INSUFFICIENT_SCOPE: &str = "insufficient_scope";

/// Kafka's `RefreshingHttpsJwks`: unknown key ids remembered (LRU), how long before one
/// may trigger a refresh again, and the longest key id that may trigger one at all.
const MISSING_KEY_ID_CACHE_MAX_ENTRIES: usize = 16;
const MISSING_KEY_ID_CACHE_IN_FLIGHT: Duration = Duration::from_secs(60);
const MISSING_KEY_ID_MAX_KEY_LENGTH: usize = 1000;

/// A JWKS document larger than this is refused (identity providers publish a few KB).
const JWKS_MAX_BYTES: u64 = 1 << 20;
/// jose4j's `Get` defaults (20 s to connect, 20 s to read).
const JWKS_HTTP_CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
const JWKS_HTTP_TIMEOUT: Duration = Duration::from_secs(40);

/// Base64url as JWTs use it; like Java's URL decoder, padding is optional.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// The error of an OAUTHBEARER exchange, server or client side.
///
/// On the server, [`error_message`](OAuthBearerError::error_message) is what Kafka puts in
/// SaslAuthenticate's `error_message` (with SASL_AUTHENTICATION_FAILED): the text of a
/// `SaslAuthenticationException` as is (the JSON error, the authorization id mismatch), and
/// for any other `SaslException` (a malformed initial response) a generic text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OAuthBearerError {
    /// The initial response does not match RFC 7628's grammar as Kafka checks it.
    #[error("Invalid OAUTHBEARER client first message")]
    InvalidClientFirstMessage,
    #[error("Invalid OAUTHBEARER client first message: 'auth' not specified")]
    AuthNotSpecified,
    #[error("Invalid OAUTHBEARER client first message: invalid 'auth' format")]
    InvalidAuthFormat,
    /// An `auth` scheme other than `Bearer` (any case).
    #[error("Invalid scheme in OAUTHBEARER client first message: {0}")]
    InvalidScheme(String),
    #[error("Extension name {0} is invalid")]
    InvalidExtensionName(String),
    #[error("Extension value ({value}) for extension {name} is invalid")]
    InvalidExtensionValue { name: String, value: String },
    /// Client side: an authorization id that is not a `saslname`.
    #[error("Invalid OAUTHBEARER authorization id: {0}")]
    InvalidAuthorizationId(String),
    /// Client side: a token that is not an RFC 6750 `b64token`.
    #[error("Invalid OAUTHBEARER token value: not an RFC 6750 b64token")]
    InvalidTokenValue,
    /// The token was refused: the server sent `error_response` as a challenge, the client
    /// answered `%x01`, and the authentication fails with that JSON as its message.
    #[error("{error_response}")]
    TokenRejected { error_response: String },
    #[error("Authentication failed: Client requested an authorization id ({authorization_id}) that is different from the token's principal name ({principal_name})")]
    AuthorizationIdMismatch {
        authorization_id: String,
        principal_name: String,
    },
    /// A message after the exchange ended (complete or failed).
    #[error("Unexpected response in OAUTHBEARER server state {state}")]
    UnexpectedServerMessage { state: OAuthBearerServerState },
    /// Client side: the first challenge was not empty.
    #[error("Expected empty challenge")]
    ExpectedEmptyChallenge,
    /// Client side: a challenge in the wrong state (Kafka's `IllegalSaslStateException`).
    #[error("Unexpected challenge in Sasl client state {state}")]
    UnexpectedClientMessage { state: OAuthBearerClientState },
}

impl OAuthBearerError {
    /// The `error_message` for SaslAuthenticate, as Kafka words it during a
    /// re-authentication (KIP-368) or a first authentication.
    pub fn error_message(&self, reauthentication: bool) -> String {
        match self {
            OAuthBearerError::TokenRejected { .. }
            | OAuthBearerError::AuthorizationIdMismatch { .. } => self.to_string(),
            _ => format!(
                "Authentication failed during {} due to invalid credentials with SASL mechanism {OAUTHBEARER_MECHANISM}",
                if reauthentication {
                    "re-authentication"
                } else {
                    "authentication"
                }
            ),
        }
    }

    /// A message in the wrong state: Kafka answers none and closes the connection.
    pub fn is_illegal_state(&self) -> bool {
        matches!(
            self,
            OAuthBearerError::UnexpectedServerMessage { .. }
                | OAuthBearerError::UnexpectedClientMessage { .. }
        )
    }
}

/// A configuration error, naming the key (or `sasl.jaas.config` and the option).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct OAuthBearerConfigError {
    pub key: String,
    pub message: String,
}

fn config_error(key: impl Into<String>, message: impl Into<String>) -> OAuthBearerConfigError {
    OAuthBearerConfigError {
        key: key.into(),
        message: message.into(),
    }
}

/// Why a token was refused, as Kafka's `OAuthBearerValidatorCallback.error(...)` reports it:
/// the RFC 7628 `status` (and `scope`, `openid-configuration`) the server sends the client,
/// and the detailed `reason` for the broker's log (never sent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenValidationError {
    pub status: String,
    pub scope: Option<String>,
    pub openid_configuration: Option<String>,
    pub reason: String,
}

impl TokenValidationError {
    fn invalid(reason: impl Into<String>) -> TokenValidationError {
        TokenValidationError {
            status: STATUS_INVALID_TOKEN.to_string(),
            scope: None,
            openid_configuration: None,
            reason: reason.into(),
        }
    }

    /// The server's error challenge, byte for byte as Kafka's `jsonErrorResponse`
    /// (`{"status":"invalid_token"}`, `{"status":"insufficient_scope", "scope":"[a, b]"}`).
    pub fn error_response(&self) -> String {
        let mut json = format!("{{\"status\":\"{}\"", self.status);
        if let Some(scope) = &self.scope {
            json.push_str(&format!(", \"scope\":\"{scope}\""));
        }
        if let Some(config) = &self.openid_configuration {
            json.push_str(&format!(", \"openid-configuration\":\"{config}\""));
        }
        json.push('}');
        json
    }
}

impl fmt::Display for TokenValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for TokenValidationError {}

// ---------------------------------------------------------------------------------------
// The client's initial response
// ---------------------------------------------------------------------------------------

/// The client's first message (RFC 7628 section 3.1, as Kafka's
/// `OAuthBearerClientInitialResponse`):
/// `n,[a=<authzid>],%x01auth=Bearer <token>%x01[<key>=<value>%x01]*%x01`.
///
/// Keys are letters only and `auth` is reserved; values are printable ASCII, space, tab,
/// CR and LF. The authorization id is kept as sent (`=2C` and `=3D` are not decoded, as
/// Kafka). A key sent twice keeps its last value.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientInitialResponse {
    token: String,
    authorization_id: String,
    extensions: BTreeMap<String, String>,
}

impl fmt::Debug for ClientInitialResponse {
    // The token is a credential: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientInitialResponse")
            .field("token", &"[hidden]")
            .field("authorization_id", &self.authorization_id)
            .field("extensions", &self.extensions)
            .finish()
    }
}

fn client_first_regex() -> &'static regex::bytes::Regex {
    static RE: OnceLock<regex::bytes::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::bytes::Regex::new(
            r"(?-u)\An,(?:a=(?P<authzid>(?:[\x01-\x7F&&[^=,]]|=2C|=3D)+))?,\x01(?P<kvpairs>(?:[A-Za-z]+=[\x21-\x7E \t\r\n]+\x01)*)\x01\z",
        )
        .expect("the initial response grammar is a valid regex")
    })
}

fn auth_regex() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"\A(?P<scheme>[A-Za-z0-9_]+) +(?P<token>[-_~+/.A-Za-z0-9]+=*)\z")
            .expect("the auth grammar is a valid regex")
    })
}

fn is_extension_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphabetic())
}

fn is_extension_value(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| matches!(b, 0x21..=0x7E | b' ' | b'\t' | b'\r' | b'\n'))
}

/// RFC 7628 `saslname` as Kafka's pattern: ASCII but `=` and `,`, or `=2C`, `=3D`.
fn is_saslname(name: &str) -> bool {
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' if bytes[i + 1..].starts_with(b"2C") || bytes[i + 1..].starts_with(b"3D") => {
                i += 3
            }
            b'=' | b',' | 0 => return false,
            b if b.is_ascii() => i += 1,
            _ => return false,
        }
    }
    !bytes.is_empty()
}

/// RFC 6750 `b64token`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~' | b'+' | b'/' | b'.')
        })
}

/// Checks extensions as Kafka's `validateExtensions`: `auth` is reserved, names are
/// letters, values printable ASCII (and space, tab, CR, LF).
pub fn validate_extensions(extensions: &BTreeMap<String, String>) -> Result<(), OAuthBearerError> {
    if extensions.contains_key(AUTH_KEY) {
        return Err(OAuthBearerError::InvalidExtensionName(AUTH_KEY.to_string()));
    }
    for (name, value) in extensions {
        if !is_extension_key(name) {
            return Err(OAuthBearerError::InvalidExtensionName(name.clone()));
        }
        if !is_extension_value(value) {
            return Err(OAuthBearerError::InvalidExtensionValue {
                name: name.clone(),
                value: value.clone(),
            });
        }
    }
    Ok(())
}

impl ClientInitialResponse {
    /// A response to send: the token, an authorization id (empty for none) and extensions.
    /// Refuses what the server could not parse (Kafka checks only the extensions).
    pub fn new(
        token: &str,
        authorization_id: &str,
        extensions: BTreeMap<String, String>,
    ) -> Result<ClientInitialResponse, OAuthBearerError> {
        if !is_b64token(token) {
            return Err(OAuthBearerError::InvalidTokenValue);
        }
        if !authorization_id.is_empty() && !is_saslname(authorization_id) {
            return Err(OAuthBearerError::InvalidAuthorizationId(
                authorization_id.to_string(),
            ));
        }
        validate_extensions(&extensions)?;
        Ok(ClientInitialResponse {
            token: token.to_string(),
            authorization_id: authorization_id.to_string(),
            extensions,
        })
    }

    /// Parses a client's first message as Kafka's server does (any bytes: never panics).
    pub fn parse(response: &[u8]) -> Result<ClientInitialResponse, OAuthBearerError> {
        let captures = client_first_regex()
            .captures(response)
            .ok_or(OAuthBearerError::InvalidClientFirstMessage)?;
        // The grammar admits ASCII only, so these are valid UTF-8.
        let text = |name: &str| {
            captures
                .name(name)
                .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
                .unwrap_or_default()
        };
        let authorization_id = text("authzid");
        let kvpairs = text("kvpairs");
        let mut properties = BTreeMap::new();
        for pair in kvpairs.split('\x01').filter(|p| !p.is_empty()) {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(OAuthBearerError::InvalidClientFirstMessage);
            };
            properties.insert(key.to_string(), value.to_string());
        }
        let auth = properties
            .remove(AUTH_KEY)
            .ok_or(OAuthBearerError::AuthNotSpecified)?;
        validate_extensions(&properties)?;
        let auth_captures = auth_regex()
            .captures(&auth)
            .ok_or(OAuthBearerError::InvalidAuthFormat)?;
        let scheme = &auth_captures["scheme"];
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(OAuthBearerError::InvalidScheme(scheme.to_string()));
        }
        Ok(ClientInitialResponse {
            token: auth_captures["token"].to_string(),
            authorization_id,
            extensions: properties,
        })
    }

    /// The message bytes, as Kafka's `toBytes`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut message = String::from("n,");
        if !self.authorization_id.is_empty() {
            message.push_str("a=");
            message.push_str(&self.authorization_id);
        }
        message.push_str(",\x01auth=Bearer ");
        message.push_str(&self.token);
        for (key, value) in &self.extensions {
            message.push('\x01');
            message.push_str(key);
            message.push('=');
            message.push_str(value);
        }
        message.push_str("\x01\x01");
        message.into_bytes()
    }

    /// The token (`auth=Bearer <token>`).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The authorization id; empty when the client gave none.
    pub fn authorization_id(&self) -> &str {
        &self.authorization_id
    }

    /// The SASL extensions (every key/value pair but `auth`).
    pub fn extensions(&self) -> &BTreeMap<String, String> {
        &self.extensions
    }
}

// ---------------------------------------------------------------------------------------
// The validated token
// ---------------------------------------------------------------------------------------

/// A token that passed validation (Kafka's `OAuthBearerToken`).
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthBearerToken {
    /// The compact serialization the client sent.
    pub value: String,
    /// The principal claim (`sub` by default), trimmed by the secured validator.
    pub principal_name: String,
    pub scope: BTreeSet<String>,
    /// When the token expires, in ms since the epoch (its `exp`): KIP-368's credential
    /// lifetime.
    pub lifetime_ms: i64,
    /// Its `iat`, in ms since the epoch.
    pub start_time_ms: Option<i64>,
}

impl fmt::Debug for OAuthBearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthBearerToken")
            .field("value", &"[hidden]")
            .field("principal_name", &self.principal_name)
            .field("scope", &self.scope)
            .field("lifetime_ms", &self.lifetime_ms)
            .field("start_time_ms", &self.start_time_ms)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------

/// How a listener validates OAUTHBEARER tokens.
#[derive(Clone, Debug)]
pub enum OAuthBearerValidation {
    /// Unsigned tokens, believed as they are (development only).
    Unsecured(UnsecuredValidatorOptions),
    /// Signed tokens checked against a JWKS.
    Secured(Box<SecuredValidatorSettings>),
}

/// A listener's OAUTHBEARER server settings.
#[derive(Clone, Debug)]
pub struct OAuthBearerSettings {
    pub validation: OAuthBearerValidation,
}

/// The unsecured validator's options, from the `unsecuredValidator*` JAAS options as
/// Kafka's `OAuthBearerUnsecuredValidatorCallbackHandler` reads them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsecuredValidatorOptions {
    /// `unsecuredValidatorPrincipalClaimName`, `sub` when blank.
    pub principal_claim_name: String,
    /// `unsecuredValidatorScopeClaimName`, `scope` when blank.
    pub scope_claim_name: String,
    /// `unsecuredValidatorRequiredScope`: space-separated scope items a token must all have.
    pub required_scope: Vec<String>,
    /// `unsecuredValidatorAllowableClockSkewMs`, 0 when blank.
    pub allowable_clock_skew_ms: i64,
}

impl Default for UnsecuredValidatorOptions {
    fn default() -> Self {
        UnsecuredValidatorOptions {
            principal_claim_name: "sub".to_string(),
            scope_claim_name: "scope".to_string(),
            required_scope: Vec::new(),
            allowable_clock_skew_ms: 0,
        }
    }
}

/// Kafka's `OAuthBearerScopeUtils.isValidScopeItem`: RFC 6749 `scope-token`.
fn is_valid_scope_item(item: &str) -> bool {
    !item.is_empty()
        && item
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

impl UnsecuredValidatorOptions {
    /// From a JAAS entry's options. Kafka reads them at each validation and fails there;
    /// this fails at configuration.
    pub fn from_jaas_options(
        options: &BTreeMap<String, String>,
    ) -> Result<UnsecuredValidatorOptions, OAuthBearerConfigError> {
        let option = |name: &str| {
            options
                .get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let jaas_key = |name: &str| format!("sasl.jaas.config option {name}");
        let mut required_scope = Vec::new();
        if let Some(scope) = option(UNSECURED_VALIDATOR_REQUIRED_SCOPE) {
            for item in scope.split(' ').filter(|i| !i.is_empty()) {
                if !is_valid_scope_item(item) {
                    return Err(config_error(
                        jaas_key(UNSECURED_VALIDATOR_REQUIRED_SCOPE),
                        format!("Invalid scope value: {item}"),
                    ));
                }
                required_scope.push(item.to_string());
            }
        }
        let allowable_clock_skew_ms = match option(UNSECURED_VALIDATOR_ALLOWABLE_CLOCK_SKEW_MS) {
            None => 0,
            Some(v) => {
                let skew: i32 = v.parse().map_err(|_| {
                    config_error(
                        jaas_key(UNSECURED_VALIDATOR_ALLOWABLE_CLOCK_SKEW_MS),
                        format!("For input string: \"{v}\""),
                    )
                })?;
                if skew < 0 {
                    return Err(config_error(
                        jaas_key(UNSECURED_VALIDATOR_ALLOWABLE_CLOCK_SKEW_MS),
                        format!("Allowable clock skew millis must not be negative: {v}"),
                    ));
                }
                i64::from(skew)
            }
        };
        Ok(UnsecuredValidatorOptions {
            principal_claim_name: option(UNSECURED_VALIDATOR_PRINCIPAL_CLAIM_NAME)
                .unwrap_or_else(|| "sub".to_string()),
            scope_claim_name: option(UNSECURED_VALIDATOR_SCOPE_CLAIM_NAME)
                .unwrap_or_else(|| "scope".to_string()),
            required_scope,
            allowable_clock_skew_ms,
        })
    }
}

/// Where the JWKS comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwksEndpoint {
    /// A `file:` URL's path (absolute).
    File(PathBuf),
    /// An `http:` or `https:` URL.
    Http(String),
}

/// The secured validator's settings (`BrokerJwtValidator` and its key resolver).
#[derive(Clone, Debug)]
pub struct SecuredValidatorSettings {
    pub jwks_endpoint: JwksEndpoint,
    /// How often the JWKS is fetched again (a `file:` one is read again if it changed).
    pub jwks_refresh_ms: i64,
    /// The first wait between failed fetches of a refresh, doubled each time...
    pub jwks_retry_backoff_ms: i64,
    /// ... and the longest a refresh keeps trying.
    pub jwks_retry_backoff_max_ms: i64,
    /// A token with an `aud` claim must name one of these (a token with `aud` is refused
    /// when the list is empty, as jose4j does); when not empty, `aud` is required.
    pub expected_audience: Vec<String>,
    /// When set, `iss` is required and must be this.
    pub expected_issuer: Option<String>,
    pub clock_skew_seconds: i32,
    pub scope_claim_name: String,
    pub sub_claim_name: String,
    /// `https:` only: the `ssl.*` options of the listener's OAUTHBEARER JAAS entry (Kafka's
    /// `JaasOptionsUtils`): a trust store for the identity provider's certificate, a key
    /// store for a client certificate. `None`: Mozilla's roots (webpki-roots).
    pub jwks_tls: Option<SslConfig>,
}

fn trimmed(get: &impl Fn(&str) -> Option<String>, key: &str) -> Option<String> {
    get(key)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn long_setting(
    get: &impl Fn(&str) -> Option<String>,
    key: &str,
    default: i64,
) -> Result<i64, OAuthBearerConfigError> {
    match trimmed(get, key) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| {
            config_error(
                key,
                format!("Invalid value {v} for configuration {key}: Not a number of type LONG"),
            )
        }),
    }
}

/// Kafka's `ConfigurationUtils.validateUrl` (and `validateFile`'s path, without its file
/// checks, which [`OAuthBearerValidator::new`] makes).
fn parse_jwks_url(value: &str) -> Result<JwksEndpoint, String> {
    let key = SASL_OAUTHBEARER_JWKS_ENDPOINT_URL;
    let malformed = |why: &str| {
        format!("The OAuth configuration option {key} contains a URL ({value}) that is malformed: {why}")
    };
    let scheme = value
        .split_once(':')
        .map(|(scheme, _)| scheme)
        .filter(|s| {
            s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        })
        .ok_or_else(|| malformed(&format!("no protocol: {value}")))?;
    let rest = &value[scheme.len() + 1..];
    match scheme.to_ascii_lowercase().as_str() {
        "file" => {
            // Java's File(url.toURI().getRawPath()): the authority is dropped, the path is
            // not percent-decoded.
            let path = match rest.strip_prefix("//") {
                Some(after) => after.find('/').map(|i| &after[i..]).unwrap_or(""),
                None => rest,
            };
            let path = path.split(['?', '#']).next().unwrap_or("");
            if path.is_empty() {
                return Err(malformed("no path"));
            }
            let path = PathBuf::from(path);
            let path = if path.is_absolute() {
                path
            } else {
                std::env::current_dir()
                    .map(|dir| dir.join(&path))
                    .unwrap_or(path)
            };
            Ok(JwksEndpoint::File(path))
        }
        "http" | "https" => {
            let uri = ureq::http::Uri::try_from(value).map_err(|e| malformed(&e.to_string()))?;
            if uri.host().is_none_or(str::is_empty) {
                return Err(malformed("no host"));
            }
            Ok(JwksEndpoint::Http(value.to_string()))
        }
        other => Err(format!(
            "The OAuth configuration option {key} contains a URL ({value}) that contains an invalid protocol ({other}); only \"http\", \"https\", and \"file\" protocol are supported"
        )),
    }
}

/// The `ssl.*` options of the JAAS entry, for an `https:` JWKS endpoint. ureq takes roots
/// and a client certificate, not a whole rustls configuration: settings it cannot honour
/// are refused rather than ignored.
fn jwks_tls(entry: Option<&JaasEntry>) -> Result<Option<SslConfig>, OAuthBearerConfigError> {
    let Some(entry) = entry else {
        return Ok(None);
    };
    let options: BTreeMap<String, String> = entry
        .options
        .iter()
        .filter(|(k, _)| k.starts_with("ssl."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if options.is_empty() {
        return Ok(None);
    }
    let jaas_key = |k: &str| format!("sasl.jaas.config option {k}");
    let config = SslConfig::load(&SslProps::new(&options, ""))
        .map_err(|e| config_error(jaas_key(&e.key), e.message))?;
    if !config.endpoint_identification {
        return Err(config_error(
            jaas_key("ssl.endpoint.identification.algorithm"),
            "the JWKS endpoint's host name is always verified",
        ));
    }
    if config.cipher_suites.is_some() {
        return Err(config_error(
            jaas_key("ssl.cipher.suites"),
            "not supported for the JWKS endpoint (every suite of the provider is offered)",
        ));
    }
    if config.protocol_versions.len() != 2 {
        return Err(config_error(
            jaas_key("ssl.enabled.protocols"),
            "not supported for the JWKS endpoint (TLSv1.2 and TLSv1.3 are offered)",
        ));
    }
    Ok(Some(config))
}

fn is_https(url: &str) -> bool {
    url.get(..6)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https:"))
}

impl OAuthBearerSettings {
    /// Reads a listener's OAUTHBEARER server settings. `get` answers a broker key (the
    /// broker resolves `listener.name.<listener>.oauthbearer.` prefixes); `jaas` is the
    /// listener's OAUTHBEARER JAAS entry (`OAuthBearerLoginModule`), whose options hold the
    /// unsecured validator's options and the JWKS endpoint's `ssl.*` options.
    ///
    /// The validator is the one `sasl.server.callback.handler.class` names. When it is not
    /// set, a JWKS URL selects the secured validator and its absence the unsecured one
    /// (Kafka would use the unsecured one and ignore the URL).
    pub fn from_props(
        get: impl Fn(&str) -> Option<String>,
        jaas: Option<&JaasEntry>,
    ) -> Result<OAuthBearerSettings, OAuthBearerConfigError> {
        if let Some(entry) = jaas {
            entry
                .require_login_module(OAUTHBEARER_LOGIN_MODULE)
                .map_err(|e| config_error("sasl.jaas.config", e.to_string()))?;
        }
        let handler = trimmed(&get, SASL_SERVER_CALLBACK_HANDLER_CLASS);
        let jwks_url = trimmed(&get, SASL_OAUTHBEARER_JWKS_ENDPOINT_URL);
        let secured = match handler.as_deref() {
            Some(VALIDATOR_CALLBACK_HANDLER | DEPRECATED_VALIDATOR_CALLBACK_HANDLER) => true,
            Some(UNSECURED_VALIDATOR_CALLBACK_HANDLER) => false,
            Some(other) => {
                return Err(config_error(
                    SASL_SERVER_CALLBACK_HANDLER_CLASS,
                    format!(
                        "{other} is not supported for OAUTHBEARER (supported: {VALIDATOR_CALLBACK_HANDLER}, {UNSECURED_VALIDATOR_CALLBACK_HANDLER})"
                    ),
                ))
            }
            None => jwks_url.is_some(),
        };
        if !secured {
            let options = jaas
                .map(|entry| UnsecuredValidatorOptions::from_jaas_options(&entry.options))
                .transpose()?
                .unwrap_or_default();
            return Ok(OAuthBearerSettings {
                validation: OAuthBearerValidation::Unsecured(options),
            });
        }
        let url = jwks_url.ok_or_else(|| {
            config_error(
                SASL_OAUTHBEARER_JWKS_ENDPOINT_URL,
                format!(
                    "The OAuth configuration option {SASL_OAUTHBEARER_JWKS_ENDPOINT_URL} is required by {VALIDATOR_CALLBACK_HANDLER} (Kafka's ClientJwtValidator, which checks no signature, is not offered to a broker)"
                ),
            )
        })?;
        if let Some(validator) = trimmed(&get, SASL_OAUTHBEARER_JWT_VALIDATOR_CLASS) {
            if validator != DEFAULT_JWT_VALIDATOR && validator != BROKER_JWT_VALIDATOR {
                return Err(config_error(
                    SASL_OAUTHBEARER_JWT_VALIDATOR_CLASS,
                    format!("{validator} is not supported (supported: {DEFAULT_JWT_VALIDATOR}, {BROKER_JWT_VALIDATOR})"),
                ));
            }
        }
        let jwks_endpoint = parse_jwks_url(&url)
            .map_err(|message| config_error(SASL_OAUTHBEARER_JWKS_ENDPOINT_URL, message))?;
        let jwks_refresh_ms = long_setting(
            &get,
            SASL_OAUTHBEARER_JWKS_ENDPOINT_REFRESH_MS,
            DEFAULT_JWKS_ENDPOINT_REFRESH_MS,
        )?;
        if jwks_refresh_ms <= 0 {
            return Err(config_error(
                SASL_OAUTHBEARER_JWKS_ENDPOINT_REFRESH_MS,
                format!(
                    "The OAuth configuration option {SASL_OAUTHBEARER_JWKS_ENDPOINT_REFRESH_MS} value must be positive"
                ),
            ));
        }
        let jwks_retry_backoff_ms = long_setting(
            &get,
            SASL_OAUTHBEARER_JWKS_ENDPOINT_RETRY_BACKOFF_MS,
            DEFAULT_JWKS_ENDPOINT_RETRY_BACKOFF_MS,
        )?;
        let jwks_retry_backoff_max_ms = long_setting(
            &get,
            SASL_OAUTHBEARER_JWKS_ENDPOINT_RETRY_BACKOFF_MAX_MS,
            DEFAULT_JWKS_ENDPOINT_RETRY_BACKOFF_MAX_MS,
        )?;
        if jwks_retry_backoff_ms < 0 {
            return Err(config_error(
                SASL_OAUTHBEARER_JWKS_ENDPOINT_RETRY_BACKOFF_MS,
                format!("retryBackoffMs value ({jwks_retry_backoff_ms}) must be non-negative"),
            ));
        }
        if jwks_retry_backoff_max_ms < 0 {
            return Err(config_error(
                SASL_OAUTHBEARER_JWKS_ENDPOINT_RETRY_BACKOFF_MAX_MS,
                format!(
                    "retryBackoffMaxMs value ({jwks_retry_backoff_max_ms}) must be non-negative"
                ),
            ));
        }
        if jwks_retry_backoff_max_ms < jwks_retry_backoff_ms {
            return Err(config_error(
                SASL_OAUTHBEARER_JWKS_ENDPOINT_RETRY_BACKOFF_MAX_MS,
                format!("retryBackoffMaxMs value ({jwks_retry_backoff_max_ms}) is less than retryBackoffMs value ({jwks_retry_backoff_ms})"),
            ));
        }
        let clock_skew_seconds = match trimmed(&get, SASL_OAUTHBEARER_CLOCK_SKEW_SECONDS) {
            None => DEFAULT_CLOCK_SKEW_SECONDS,
            Some(v) => v.parse().map_err(|_| {
                config_error(
                    SASL_OAUTHBEARER_CLOCK_SKEW_SECONDS,
                    format!("Invalid value {v} for configuration {SASL_OAUTHBEARER_CLOCK_SKEW_SECONDS}: Not a number of type INT"),
                )
            })?,
        };
        // A Kafka LIST: comma-separated, each item trimmed.
        let expected_audience: Vec<String> = trimmed(&get, SASL_OAUTHBEARER_EXPECTED_AUDIENCE)
            .map(|v| v.split(',').map(|a| a.trim().to_string()).collect())
            .unwrap_or_default();
        let claim_name = |key: &str, default: &str| match get(key) {
            None => Ok(default.to_string()),
            Some(v) if v.trim().is_empty() => Err(config_error(
                key,
                format!(
                    "The OAuth configuration option {key} value must not contain only whitespace"
                ),
            )),
            Some(v) => Ok(v.trim().to_string()),
        };
        let jwks_tls = match &jwks_endpoint {
            JwksEndpoint::Http(url) if is_https(url) => jwks_tls(jaas)?,
            _ => None,
        };
        Ok(OAuthBearerSettings {
            validation: OAuthBearerValidation::Secured(Box::new(SecuredValidatorSettings {
                jwks_endpoint,
                jwks_refresh_ms,
                jwks_retry_backoff_ms,
                jwks_retry_backoff_max_ms,
                expected_audience,
                expected_issuer: trimmed(&get, SASL_OAUTHBEARER_EXPECTED_ISSUER),
                clock_skew_seconds,
                scope_claim_name: claim_name(
                    SASL_OAUTHBEARER_SCOPE_CLAIM_NAME,
                    DEFAULT_SCOPE_CLAIM_NAME,
                )?,
                sub_claim_name: claim_name(
                    SASL_OAUTHBEARER_SUB_CLAIM_NAME,
                    DEFAULT_SUB_CLAIM_NAME,
                )?,
                jwks_tls,
            })),
        })
    }

    /// Whether tokens are believed without a signature (the broker should demand an
    /// explicit opt-in for that).
    pub fn is_unsecured(&self) -> bool {
        matches!(self.validation, OAuthBearerValidation::Unsecured(_))
    }
}

// ---------------------------------------------------------------------------------------
// The validator
// ---------------------------------------------------------------------------------------

/// A listener's token validator, shared by its connections. A secured one owns a JWKS
/// refresh thread, stopped when the validator is dropped.
pub struct OAuthBearerValidator {
    kind: ValidatorKind,
}

enum ValidatorKind {
    Unsecured(UnsecuredValidatorOptions),
    Secured(SecuredValidator),
}

impl fmt::Debug for OAuthBearerValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ValidatorKind::Unsecured(options) => f
                .debug_tuple("OAuthBearerValidator::Unsecured")
                .field(options)
                .finish(),
            ValidatorKind::Secured(v) => f
                .debug_struct("OAuthBearerValidator::Secured")
                .field("jwks", &v.jwks.location)
                .finish(),
        }
    }
}

/// The milliseconds since the epoch now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl OAuthBearerValidator {
    /// The validator the settings describe. A secured one reads (or fetches) its JWKS now,
    /// as Kafka does at startup, and fails if it cannot; then it starts its refresh thread.
    pub fn new(
        settings: &OAuthBearerSettings,
    ) -> Result<OAuthBearerValidator, OAuthBearerConfigError> {
        match &settings.validation {
            OAuthBearerValidation::Unsecured(options) => Ok(Self::unsecured(options.clone())),
            OAuthBearerValidation::Secured(secured) => Ok(OAuthBearerValidator {
                kind: ValidatorKind::Secured(SecuredValidator::new(secured)?),
            }),
        }
    }

    /// An unsecured validator with these options.
    pub fn unsecured(options: UnsecuredValidatorOptions) -> OAuthBearerValidator {
        OAuthBearerValidator {
            kind: ValidatorKind::Unsecured(options),
        }
    }

    pub fn is_unsecured(&self) -> bool {
        matches!(self.kind, ValidatorKind::Unsecured(_))
    }

    /// Validates a token at `now_ms` (ms since the epoch). Never blocks on the network: an
    /// unknown key id fails at once and schedules a JWKS refresh.
    pub fn validate(
        &self,
        token: &str,
        now_ms: i64,
    ) -> Result<OAuthBearerToken, TokenValidationError> {
        match &self.kind {
            ValidatorKind::Unsecured(options) => validate_unsecured(options, token, now_ms),
            ValidatorKind::Secured(v) => v.validate(token, now_ms),
        }
    }

    /// Reads or fetches the JWKS now (waiting for it, with the configured retries) and uses
    /// it if it parses. Nothing to do for an unsecured validator.
    pub fn refresh_jwks(&self) -> Result<(), String> {
        match &self.kind {
            ValidatorKind::Unsecured(_) => Ok(()),
            ValidatorKind::Secured(v) => v.jwks.refresh(true),
        }
    }
}

// --- unsecured ---

/// A claim as Kafka's `OAuthBearerUnsecuredJws.convert` keeps it: arrays become lists of
/// their elements' text, numbers stay numbers, anything else becomes its text (Jackson's
/// `asText`: `true`, `null`, `""` for an object).
enum UnsecuredClaim {
    Text(String),
    Number(serde_json::Number),
    List(Vec<String>),
}

fn json_as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_string(),
        Value::Array(_) | Value::Object(_) => String::new(),
    }
}

impl UnsecuredClaim {
    fn from_json(value: &Value) -> UnsecuredClaim {
        match value {
            Value::Array(items) => UnsecuredClaim::List(items.iter().map(json_as_text).collect()),
            Value::Number(n) => UnsecuredClaim::Number(n.clone()),
            other => UnsecuredClaim::Text(json_as_text(other)),
        }
    }

    /// The Java class Kafka names in its type errors.
    fn java_type(&self) -> &'static str {
        match self {
            UnsecuredClaim::Text(_) => "String",
            UnsecuredClaim::List(_) => "ArrayList",
            UnsecuredClaim::Number(n) => {
                if n.as_i64().is_some_and(|v| i32::try_from(v).is_ok()) {
                    "Integer"
                } else if n.is_i64() {
                    "Long"
                } else if n.is_u64() {
                    "BigInteger"
                } else {
                    "Double"
                }
            }
        }
    }
}

/// Decodes one part of a compact serialization into a JSON object's members.
fn decode_json_object(part: &str) -> Result<Map<String, Value>, String> {
    let bytes = B64URL
        .decode(part)
        .map_err(|_| "malformed Base64 URL encoded value".to_string())?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) | Err(_) => Err("malformed JSON".to_string()),
    }
}

struct UnsecuredJws {
    claims: BTreeMap<String, UnsecuredClaim>,
}

impl UnsecuredJws {
    fn claim(&self, name: &str) -> Option<&UnsecuredClaim> {
        self.claims.get(name)
    }

    fn type_error(&self, name: &str, expected: &str) -> String {
        let actual = self
            .claim(name)
            .map(UnsecuredClaim::java_type)
            .unwrap_or("null");
        format!("The '{name}' claim was not of type {expected}: {actual}")
    }

    /// A numeric claim (`exp`, `iat`) in seconds, absent or of the wrong type.
    fn number(&self, name: &str) -> Result<Option<f64>, String> {
        match self.claim(name) {
            None => Ok(None),
            Some(UnsecuredClaim::Number(n)) => Ok(Some(n.as_f64().unwrap_or(f64::NAN))),
            Some(_) => Err(self.type_error(name, "Number")),
        }
    }
}

/// Kafka's `Math.round(seconds * 1000)`.
fn seconds_to_ms(seconds: f64) -> i64 {
    (seconds * 1000.0).round() as i64
}

/// Kafka's `OAuthBearerUnsecuredJws` constructor, then the checks of
/// `OAuthBearerUnsecuredValidatorCallbackHandler`.
fn validate_unsecured(
    options: &UnsecuredValidatorOptions,
    token: &str,
    now_ms: i64,
) -> Result<OAuthBearerToken, TokenValidationError> {
    fn invalid(reason: impl Into<String>) -> TokenValidationError {
        TokenValidationError::invalid(reason)
    }
    if token.contains("..") {
        return Err(invalid("Malformed compact serialization contains '..'"));
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(invalid(
            "Unsecured JWS compact serializations must have 3 dot-separated Base64URL-encoded values",
        ));
    }
    let header = decode_json_object(parts[0]).map_err(invalid)?;
    let claims = decode_json_object(parts[1]).map_err(invalid)?;
    let alg = header
        .get("alg")
        .ok_or_else(|| invalid("JWS header must have an Algorithm value"))?;
    if alg.as_str() != Some("none") {
        return Err(invalid("Unsecured JWS must have 'none' for an algorithm"));
    }
    if !parts[2].is_empty() {
        return Err(invalid(
            "Unsecured JWS must not contain a digital signature",
        ));
    }
    let jws = UnsecuredJws {
        claims: claims
            .iter()
            .map(|(k, v)| (k.clone(), UnsecuredClaim::from_json(v)))
            .collect(),
    };
    // Scope: a string is one item (trimmed), a list its non-blank items (trimmed).
    let scope: BTreeSet<String> = match jws.claim(&options.scope_claim_name) {
        None => BTreeSet::new(),
        Some(UnsecuredClaim::Text(s)) if s.trim().is_empty() => BTreeSet::new(),
        Some(UnsecuredClaim::Text(s)) => BTreeSet::from([s.trim().to_string()]),
        Some(UnsecuredClaim::List(items)) => items
            .iter()
            .map(|i| i.trim())
            .filter(|i| !i.is_empty())
            .map(str::to_string)
            .collect(),
        Some(UnsecuredClaim::Number(_)) => {
            return Err(invalid(jws.type_error(&options.scope_claim_name, "List")))
        }
    };
    let exp = jws
        .number("exp")
        .map_err(invalid)?
        .ok_or_else(|| invalid("No expiration time in JWT"))?;
    let principal_name = match jws.claim(&options.principal_claim_name) {
        Some(UnsecuredClaim::Text(s)) if !s.trim().is_empty() => s.clone(),
        None | Some(UnsecuredClaim::Text(_)) => {
            return Err(invalid(format!(
                "No principal name in JWT claim: {}",
                options.principal_claim_name
            )))
        }
        Some(_) => {
            return Err(invalid(
                jws.type_error(&options.principal_claim_name, "String"),
            ))
        }
    };
    let iat = jws.number("iat").map_err(invalid)?;
    let skew = options.allowable_clock_skew_ms;
    if let Some(iat) = iat {
        if 1000.0 * iat > now_ms.saturating_add(skew) as f64 {
            return Err(invalid(format!(
                "The Issued At value ({iat:.6} seconds) was after the indicated time ({now_ms} ms) plus allowable clock skew ({skew} ms)"
            )));
        }
    }
    if now_ms.saturating_sub(skew) as f64 >= 1000.0 * exp {
        return Err(invalid(format!(
            "The indicated time ({now_ms} ms) minus allowable clock skew ({skew} ms) was on or after the Expiration Time value ({exp:.6} seconds)"
        )));
    }
    if let Some(iat) = iat {
        if exp <= iat {
            return Err(invalid(format!(
                "The Expiration Time time ({exp:.6} seconds) was not after the Issued At time ({iat:.6} seconds)"
            )));
        }
    }
    if let Some(missing) = options.required_scope.iter().find(|s| !scope.contains(*s)) {
        let required = format!("[{}]", options.required_scope.join(", "));
        let provided = format!(
            "[{}]",
            scope
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Err(TokenValidationError {
            status: STATUS_INSUFFICIENT_SCOPE.to_string(),
            scope: Some(required.clone()),
            openid_configuration: None,
            reason: format!(
                "The provided scope ({provided}) was missing a required scope ({missing}).  All required scope elements: {required}"
            ),
        });
    }
    Ok(OAuthBearerToken {
        value: token.to_string(),
        principal_name,
        scope,
        lifetime_ms: seconds_to_ms(exp),
        start_time_ms: iat.map(seconds_to_ms),
    })
}

// --- secured ---

struct SecuredValidator {
    jwks: Arc<JwksShared>,
    expected_audience: BTreeSet<String>,
    expected_issuer: Option<String>,
    clock_skew_seconds: i64,
    scope_claim_name: String,
    sub_claim_name: String,
}

impl Drop for SecuredValidator {
    fn drop(&mut self) {
        self.jwks.shutdown();
    }
}

/// One key of a JWKS, with what jose4j's `VerificationJwkSelector` matches on.
struct Jwk {
    kid: Option<String>,
    kty: String,
    usage: Option<String>,
    alg: Option<String>,
    crv: Option<String>,
    key: DecodingKey,
}

impl Jwk {
    fn from_json(value: &Value) -> Result<Jwk, String> {
        let field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_string);
        let required = |name: &str| field(name).ok_or_else(|| format!("missing '{name}'"));
        let kty = required("kty")?;
        let crv = field("crv");
        let key = match kty.as_str() {
            "RSA" => DecodingKey::from_rsa_components(&required("n")?, &required("e")?),
            "EC" => DecodingKey::from_ec_components(&required("x")?, &required("y")?),
            "OKP" if crv.as_deref() == Some("Ed25519") => {
                DecodingKey::from_ed_components(&required("x")?)
            }
            "oct" => {
                let secret = B64URL
                    .decode(required("k")?)
                    .map_err(|e| format!("invalid 'k': {e}"))?;
                Ok(DecodingKey::from_secret(&secret))
            }
            other => return Err(format!("unsupported key type {other}")),
        }
        .map_err(|e| format!("invalid key: {e}"))?;
        Ok(Jwk {
            kid: field("kid"),
            kty,
            usage: field("use"),
            alg: field("alg"),
            crv,
            key,
        })
    }

    /// Whether this key may verify a JWS of `alg` (jose4j's filter for inbound signatures).
    fn suits(&self, alg: Algorithm, alg_name: &str, kid: Option<&str>) -> bool {
        if kid.is_some() && self.kid.as_deref() != kid {
            return false;
        }
        if self.usage.as_deref().is_some_and(|u| u != "sig") {
            return false;
        }
        if self.alg.as_deref().is_some_and(|a| a != alg_name) {
            return false;
        }
        let (kty, crv) = match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => ("RSA", None),
            Algorithm::ES256 => ("EC", Some("P-256")),
            Algorithm::ES384 => ("EC", Some("P-384")),
            Algorithm::EdDSA => ("OKP", Some("Ed25519")),
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => ("oct", None),
        };
        self.kty == kty && (crv.is_none() || self.crv.as_deref() == crv)
    }
}

/// Parses a JWKS document; keys this cannot use are skipped (as jose4j does).
fn parse_jwks(json: &str) -> Result<Vec<Jwk>, String> {
    let value: Value =
        serde_json::from_str(json).map_err(|e| format!("the JWKS is not valid JSON: {e}"))?;
    let keys = value
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("The JSON JWKS content does not include the keys member.")?;
    Ok(keys
        .iter()
        .filter_map(|k| match Jwk::from_json(k) {
            Ok(jwk) => Some(jwk),
            Err(e) => {
                tracing::debug!(
                    "Ignoring an individual JWK in a JWKS due to a problem processing it: {e}"
                );
                None
            }
        })
        .collect())
}

enum JwksSource {
    File {
        path: PathBuf,
        /// The modification time and size of the file last read.
        stamp: Mutex<Option<(Option<SystemTime>, u64)>>,
    },
    Http {
        url: String,
        agent: ureq::Agent,
    },
}

struct RefreshControl {
    shutdown: bool,
    expedite: bool,
    /// Unknown key ids and when each may trigger a refresh again, least recently used first.
    missing_key_ids: Vec<(String, Instant)>,
}

/// The JWKS of a secured validator, shared with its refresh thread.
struct JwksShared {
    source: JwksSource,
    location: String,
    keys: RwLock<Arc<Vec<Jwk>>>,
    control: Mutex<RefreshControl>,
    wake: Condvar,
    refresh_interval: Duration,
    retry_backoff: Duration,
    retry_backoff_max: Duration,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// The HTTP client of a JWKS endpoint. From an `https:` URL, a redirect to `http:` is
/// refused (keys must not come over plain text).
fn http_agent(
    tls: Option<&SslConfig>,
    https_only: bool,
) -> Result<ureq::Agent, OAuthBearerConfigError> {
    use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};
    let mut builder = TlsConfig::builder().provider(TlsProvider::Rustls);
    builder = match tls.and_then(|t| t.trust_store.as_ref()) {
        Some(certs) => {
            let certs: Vec<Certificate<'static>> = certs
                .iter()
                .map(|c| Certificate::from_der(c.as_ref()).to_owned())
                .collect();
            builder.root_certs(RootCerts::new_with_certs(&certs))
        }
        None => builder.root_certs(RootCerts::WebPki),
    };
    if let Some(key_store) = tls.and_then(|t| t.key_store.as_ref()) {
        // ureq takes a key as DER only with a kind it does not export: hand it PEM.
        let label = match &key_store.key {
            rustls::pki_types::PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
            rustls::pki_types::PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
            rustls::pki_types::PrivateKeyDer::Pkcs8(_) => "PRIVATE KEY",
            _ => {
                return Err(config_error(
                    "sasl.jaas.config option ssl.keystore.location",
                    "unsupported private key type",
                ))
            }
        };
        let body = base64::engine::general_purpose::STANDARD.encode(key_store.key.secret_der());
        let mut pem = format!("-----BEGIN {label}-----\n");
        for line in body.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str(&format!("-----END {label}-----\n"));
        let key = PrivateKey::from_pem(pem.as_bytes()).map_err(|e| {
            config_error(
                "sasl.jaas.config option ssl.keystore.location",
                e.to_string(),
            )
        })?;
        let chain: Vec<Certificate<'static>> = key_store
            .chain
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        builder = builder.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    let config = ureq::Agent::config_builder()
        .tls_config(builder.build())
        .proxy(None)
        .https_only(https_only)
        .timeout_connect(Some(JWKS_HTTP_CONNECT_TIMEOUT))
        .timeout_global(Some(JWKS_HTTP_TIMEOUT))
        .build();
    Ok(ureq::Agent::new_with_config(config))
}

impl JwksShared {
    fn keys(&self) -> Arc<Vec<Jwk>> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads or fetches the document. `None`: a file that did not change since the last read
    /// (when `force` is false).
    fn fetch(&self, force: bool) -> Result<Option<Vec<Jwk>>, String> {
        match &self.source {
            JwksSource::File { path, stamp } => {
                let meta = std::fs::metadata(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let current = (meta.modified().ok(), meta.len());
                if !force && *lock(stamp) == Some(current) {
                    return Ok(None);
                }
                if meta.len() > JWKS_MAX_BYTES {
                    return Err(format!(
                        "{} is larger than {JWKS_MAX_BYTES} bytes",
                        path.display()
                    ));
                }
                let json = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let keys = parse_jwks(&json)?;
                *lock(stamp) = Some(current);
                Ok(Some(keys))
            }
            JwksSource::Http { url, agent } => {
                let mut response = agent
                    .get(url.as_str())
                    .call()
                    .map_err(|e| format!("cannot fetch {url}: {e}"))?;
                let body = response
                    .body_mut()
                    .with_config()
                    .limit(JWKS_MAX_BYTES)
                    .read_to_string()
                    .map_err(|e| format!("cannot read the response of {url}: {e}"))?;
                parse_jwks(&body).map(Some)
            }
        }
    }

    /// Kafka's `Retry`: fetches until it works, waiting `backoff * 2^(attempt-1)` between
    /// attempts, for at most `retry_backoff_max` (at least one attempt); the last error is
    /// reported.
    fn fetch_with_retry(&self, force: bool) -> Result<Option<Vec<Jwk>>, String> {
        let end = Instant::now() + self.retry_backoff_max;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let error = match self.fetch(force) {
                Ok(keys) => return Ok(keys),
                Err(e) => e,
            };
            tracing::warn!(
                "OAuth JWKS fetch attempt {attempt} of {} failed: {error}",
                self.location
            );
            let factor = 1u32.checked_shl(attempt - 1).unwrap_or(u32::MAX);
            let wait = self
                .retry_backoff
                .saturating_mul(factor)
                .min(end.saturating_duration_since(Instant::now()));
            if wait.is_zero() || !self.sleep(wait) {
                return Err(error);
            }
        }
    }

    /// Waits, unless the validator is dropped meanwhile (then false).
    fn sleep(&self, duration: Duration) -> bool {
        let end = Instant::now() + duration;
        let mut control = lock(&self.control);
        loop {
            if control.shutdown {
                return false;
            }
            let now = Instant::now();
            if now >= end {
                return true;
            }
            control = self
                .wake
                .wait_timeout(control, end - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn refresh(&self, force: bool) -> Result<(), String> {
        match self.fetch_with_retry(force) {
            Ok(None) => Ok(()),
            Ok(Some(keys)) => {
                {
                    let mut control = lock(&self.control);
                    control
                        .missing_key_ids
                        .retain(|(kid, _)| !keys.iter().any(|k| k.kid.as_deref() == Some(kid)));
                }
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
                tracing::info!("OAuth JWKS refresh of {} complete", self.location);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(
                    "OAuth JWKS refresh of {} encountered an error; not updating local JWKS cache: {e}",
                    self.location
                );
                Err(e)
            }
        }
    }

    /// Kafka's `maybeExpediteRefresh`: a refresh now, unless this key id asked for one less
    /// than a minute ago (or is absurdly long).
    fn maybe_expedite_refresh(&self, kid: &str) -> bool {
        if kid.len() > MISSING_KEY_ID_MAX_KEY_LENGTH {
            let trimmed: String = kid.chars().take(MISSING_KEY_ID_MAX_KEY_LENGTH).collect();
            tracing::warn!(
                "Key ID {trimmed} (trimmed to first {MISSING_KEY_ID_MAX_KEY_LENGTH} characters out of {} total) was too long to cache",
                kid.len()
            );
            return false;
        }
        let now = Instant::now();
        let mut control = lock(&self.control);
        if let Some(i) = control.missing_key_ids.iter().position(|(k, _)| k == kid) {
            let entry = control.missing_key_ids.remove(i);
            if entry.1 > now {
                control.missing_key_ids.push(entry);
                return false;
            }
        }
        control
            .missing_key_ids
            .push((kid.to_string(), now + MISSING_KEY_ID_CACHE_IN_FLIGHT));
        if control.missing_key_ids.len() > MISSING_KEY_ID_CACHE_MAX_ENTRIES {
            control.missing_key_ids.remove(0);
        }
        control.expedite = true;
        self.wake.notify_all();
        true
    }

    fn shutdown(&self) {
        lock(&self.control).shutdown = true;
        self.wake.notify_all();
    }

    /// The refresh thread: a refresh every interval (fixed rate), and one at once when
    /// expedited.
    fn run_refresher(&self) {
        let mut next = Instant::now() + self.refresh_interval;
        loop {
            {
                let mut control = lock(&self.control);
                loop {
                    if control.shutdown {
                        return;
                    }
                    if control.expedite {
                        control.expedite = false;
                        break;
                    }
                    let now = Instant::now();
                    if now >= next {
                        next += self.refresh_interval;
                        if next <= now {
                            next = now + self.refresh_interval;
                        }
                        break;
                    }
                    control = self
                        .wake
                        .wait_timeout(control, next - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
            // Errors are logged; the old keys stay.
            let _ = self.refresh(false);
        }
    }
}

/// jose4j's `JwtConsumer` claim validators (audience, issuer, dates), each reporting at
/// most one problem.
struct ClaimProblems(Vec<String>);

/// A JSON number as jose4j's `NumericDate` seconds (`Number.longValue()`).
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, String> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(Some(
            n.as_i64()
                .or_else(|| n.as_u64().map(|_| i64::MAX))
                .unwrap_or_else(|| n.as_f64().unwrap_or(0.0) as i64),
        )),
        Some(other) => Err(format!(
            "The value of the '{name}' claim is not the expected type ({other} - Cannot cast to java.lang.Number)"
        )),
    }
}

fn string_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!(
            "The value of the '{name}' claim is not the expected type ({other} - Cannot cast to java.lang.String)"
        )),
    }
}

fn java_list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

/// Kafka's `ClaimValidationUtils.validateString`.
fn validate_claim_string(name: &str, value: Option<&str>) -> Result<String, String> {
    match value {
        None => Err(format!("{name} value must be non-null")),
        Some("") => Err(format!("{name} value must be non-empty")),
        Some(v) if v.trim().is_empty() => {
            Err(format!("{name} value must not contain only whitespace"))
        }
        Some(v) => Ok(v.trim().to_string()),
    }
}

impl SecuredValidator {
    fn new(
        settings: &SecuredValidatorSettings,
    ) -> Result<SecuredValidator, OAuthBearerConfigError> {
        let key = SASL_OAUTHBEARER_JWKS_ENDPOINT_URL;
        let (source, location) = match &settings.jwks_endpoint {
            JwksEndpoint::File(path) => {
                // Kafka's ConfigurationUtils.validateFile.
                let meta = std::fs::metadata(path).map_err(|_| {
                    config_error(
                        key,
                        format!("The OAuth configuration option {key} contains a file ({}) that doesn't exist", path.display()),
                    )
                })?;
                if meta.is_dir() {
                    return Err(config_error(
                        key,
                        format!("The OAuth configuration option {key} references a directory ({}), not a file", path.display()),
                    ));
                }
                if std::fs::File::open(path).is_err() {
                    return Err(config_error(
                        key,
                        format!("The OAuth configuration option {key} contains a file ({}) that doesn't have read permission", path.display()),
                    ));
                }
                (
                    JwksSource::File {
                        path: path.clone(),
                        stamp: Mutex::new(None),
                    },
                    path.display().to_string(),
                )
            }
            JwksEndpoint::Http(url) => (
                JwksSource::Http {
                    url: url.clone(),
                    agent: http_agent(settings.jwks_tls.as_ref(), is_https(url))?,
                },
                url.clone(),
            ),
        };
        let jwks = Arc::new(JwksShared {
            source,
            location,
            keys: RwLock::new(Arc::new(Vec::new())),
            control: Mutex::new(RefreshControl {
                shutdown: false,
                expedite: false,
                missing_key_ids: Vec::new(),
            }),
            wake: Condvar::new(),
            refresh_interval: millis(settings.jwks_refresh_ms),
            retry_backoff: millis(settings.jwks_retry_backoff_ms),
            retry_backoff_max: millis(settings.jwks_retry_backoff_max_ms),
        });
        // Kafka fetches once at startup (no retry) and fails the broker if it cannot.
        let keys = jwks
            .fetch(true)
            .map_err(|e| {
                config_error(
                    key,
                    format!("The OAuth validator configuration encountered an error when initializing the VerificationKeyResolver: {e}"),
                )
            })?
            .unwrap_or_default();
        *jwks.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
        let thread_jwks = jwks.clone();
        std::thread::Builder::new()
            .name("oauthbearer-jwks-refresh".to_string())
            .spawn(move || thread_jwks.run_refresher())
            .map_err(|e| config_error(key, format!("cannot start the JWKS refresh thread: {e}")))?;
        Ok(SecuredValidator {
            jwks,
            expected_audience: settings.expected_audience.iter().cloned().collect(),
            expected_issuer: settings.expected_issuer.clone(),
            clock_skew_seconds: i64::from(settings.clock_skew_seconds),
            scope_claim_name: settings.scope_claim_name.clone(),
            sub_claim_name: settings.sub_claim_name.clone(),
        })
    }

    /// Kafka's `BrokerJwtValidator.validate`: `SerializedJwt`, jose4j's `JwtConsumer`, then
    /// `ClaimValidationUtils`.
    fn validate(&self, token: &str, now_ms: i64) -> Result<OAuthBearerToken, TokenValidationError> {
        let token = token.trim();
        let claims = self.verify(token).map_err(|e| {
            TokenValidationError::invalid(format!("Could not validate the access token: {e}"))
        })?;
        let problems = self.claim_problems(&claims, now_ms);
        if !problems.0.is_empty() {
            return Err(TokenValidationError::invalid(format!(
                "Could not validate the access token: JWT rejected due to invalid claims or other invalid content. Additional details: [{}]",
                problems.0.join("], [")
            )));
        }
        self.token(token, &claims)
            .map_err(TokenValidationError::invalid)
    }

    /// The compact serialization's structure, its header, the signature (with a key of the
    /// JWKS) and the claims object.
    fn verify(&self, token: &str) -> Result<Map<String, Value>, String> {
        if token.is_empty() {
            return Err(
                "Empty JWT provided; expected three sections (header, payload, and signature)"
                    .to_string(),
            );
        }
        let parts: Vec<&str> = token.split('.').collect();
        if parts.len() != 3 {
            return Err(format!(
                "Malformed JWT provided; expected three sections (header, payload, and signature), but {} sections provided",
                parts.len()
            ));
        }
        for (part, name) in parts.iter().zip(["header", "payload", "signature"]) {
            if part.trim().is_empty() {
                return Err(format!(
                    "Malformed JWT provided; expected at least three sections (header, payload, and signature), but {name} section missing"
                ));
            }
        }
        let header = decode_json_object(parts[0])
            .map_err(|e| format!("Unable to parse the JWS header: {e}"))?;
        let header_json = Value::Object(header.clone()).to_string();
        let alg_name = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or("The JWS header has no 'alg' (algorithm) value")?;
        if alg_name == "none" {
            return Err("'none' is a disallowed JWS algorithm".to_string());
        }
        let alg = Algorithm::from_str(alg_name).map_err(|_| {
            format!("{alg_name} is an unknown, unsupported or unavailable alg algorithm")
        })?;
        if let Some(crit) = header.get("crit") {
            return Err(format!("Unrecognized header {crit} marked as critical"));
        }
        let claims = decode_json_object(parts[1])
            .map_err(|e| format!("Unable to parse the JWT claims: {e}"))?;
        let kid = header.get("kid").and_then(Value::as_str);
        let keys = self.jwks.keys();
        let candidates: Vec<&Jwk> = keys
            .iter()
            .filter(|k| k.suits(alg, alg_name, kid))
            .collect();
        if candidates.is_empty() {
            if let Some(kid) = kid {
                if self.jwks.maybe_expedite_refresh(kid) {
                    tracing::debug!(
                        "Refreshing JWKs from {} as no suitable verification key for JWS w/ header {header_json} was found",
                        self.jwks.location
                    );
                }
            }
            return Err(format!(
                "Unable to find a suitable verification key for JWS w/ header {header_json} from JWKs obtained from {}",
                self.jwks.location
            ));
        }
        let message = &token[..parts[0].len() + 1 + parts[1].len()];
        let verified = candidates.iter().any(|jwk| {
            jsonwebtoken::crypto::verify(parts[2], message.as_bytes(), &jwk.key, alg)
                .unwrap_or(false)
        });
        if !verified {
            return Err(format!("JWS signature is invalid (header {header_json})"));
        }
        Ok(claims)
    }

    fn claim_problems(&self, claims: &Map<String, Value>, now_ms: i64) -> ClaimProblems {
        let mut problems = Vec::new();
        // AudValidator: aud must name an expected audience when present; required when
        // audiences are expected.
        let audience = match claims.get("aud") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| "The value of the 'aud' claim is not the expected type (not a list of strings)".to_string()),
            Some(other) => Err(format!(
                "The value of the 'aud' claim is not the expected type ({other} - Cannot cast to java.util.List)"
            )),
        };
        match audience {
            Err(e) => problems.push(e),
            Ok(None) if !self.expected_audience.is_empty() => {
                problems.push("No Audience (aud) claim present.".to_string())
            }
            Ok(None) => {}
            Ok(Some(audiences)) => {
                if !audiences.iter().any(|a| self.expected_audience.contains(a)) {
                    let expected: Vec<String> = self.expected_audience.iter().cloned().collect();
                    problems.push(format!(
                        "Audience (aud) claim {}{} Expected {} as an aud value.",
                        java_list(&audiences),
                        if expected.is_empty() {
                            " present in the JWT but no expected audience value(s) were provided to the JWT Consumer."
                        } else {
                            " doesn't contain an acceptable identifier."
                        },
                        if expected.len() == 1 {
                            expected[0].clone()
                        } else {
                            format!("one of {}", java_list(&expected))
                        }
                    ));
                }
            }
        }
        // IssValidator.
        if let Some(expected) = &self.expected_issuer {
            match string_claim(claims, "iss") {
                Err(e) => problems.push(e),
                Ok(None) => problems.push(format!(
                    "No Issuer (iss) claim present but was expecting {expected}"
                )),
                Ok(Some(iss)) if &iss != expected => problems.push(format!(
                    "Issuer (iss) claim value ({iss}) doesn't match expected value of {expected}"
                )),
                Ok(Some(_)) => {}
            }
        }
        // NumericDateValidator (exp and iat required).
        if let Some(problem) = self.date_problem(claims, now_ms) {
            problems.push(problem);
        }
        ClaimProblems(problems)
    }

    fn date_problem(&self, claims: &Map<String, Value>, now_ms: i64) -> Option<String> {
        let (exp, iat, nbf) = match (
            numeric_date(claims, "exp"),
            numeric_date(claims, "iat"),
            numeric_date(claims, "nbf"),
        ) {
            (Ok(exp), Ok(iat), Ok(nbf)) => (exp, iat, nbf),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return Some(e),
        };
        let skew = self.clock_skew_seconds;
        let skew_message = if skew > 0 {
            format!(" (even when providing {skew} seconds of leeway to account for clock skew).")
        } else {
            ".".to_string()
        };
        let now = now_ms.div_euclid(1000);
        let Some(exp) = exp else {
            return Some("No Expiration Time (exp) claim present.".to_string());
        };
        let Some(iat) = iat else {
            return Some("No Issued At (iat) claim present.".to_string());
        };
        if now.saturating_sub(skew) >= exp {
            return Some(format!(
                "The JWT is no longer valid - the evaluation time {now} is on or after the Expiration Time (exp={exp}) claim value{skew_message}"
            ));
        }
        if exp < iat {
            return Some(format!(
                "The Expiration Time (exp={exp}) claim value cannot be before the Issued At (iat={iat}) claim value."
            ));
        }
        if let Some(nbf) = nbf {
            if exp < nbf {
                return Some(format!(
                    "The Expiration Time (exp={exp}) claim value cannot be before the Not Before (nbf={nbf}) claim value."
                ));
            }
            if now.saturating_add(skew) < nbf {
                return Some(format!(
                    "The JWT is not yet valid as the evaluation time {now} is before the Not Before (nbf={nbf}) claim time{skew_message}"
                ));
            }
        }
        None
    }

    /// Kafka's claim extraction after jose4j: scope (a string is one item; a list; anything
    /// else none), `exp`, the subject claim, `iat`.
    fn token(&self, token: &str, claims: &Map<String, Value>) -> Result<OAuthBearerToken, String> {
        let scope_name = &self.scope_claim_name;
        let raw_scope: Vec<Option<&str>> = match claims.get(scope_name) {
            Some(Value::String(s)) => vec![Some(s.as_str())],
            Some(Value::Array(items)) => items.iter().map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let mut scope = BTreeSet::new();
        for item in raw_scope {
            let item = match item {
                Some(item) => validate_claim_string(scope_name, Some(item))?,
                None => return Err(format!("{scope_name} value must be a list of strings")),
            };
            if !scope.insert(item.clone()) {
                return Err(format!(
                    "{scope_name} value must not contain duplicates - {item} already present"
                ));
            }
        }
        let expiration = numeric_date(claims, "exp")
            .map_err(|_| "Could not extract the 'exp' claim from the access token".to_string())?
            .map(|s| s.saturating_mul(1000));
        let expiration = match expiration {
            None => return Err("exp value must be non-null".to_string()),
            Some(ms) if ms < 0 => {
                return Err(format!(
                    "exp value must be non-negative; value given was \"{ms}\""
                ))
            }
            Some(ms) => ms,
        };
        let sub_name = &self.sub_claim_name;
        let sub = string_claim(claims, sub_name).map_err(|_| {
            format!("Could not extract the '{sub_name}' claim from the access token")
        })?;
        let principal_name = validate_claim_string(sub_name, sub.as_deref())?;
        let issued_at = numeric_date(claims, "iat")
            .map_err(|_| "Could not extract the 'iat' claim from the access token".to_string())?
            .map(|s| s.saturating_mul(1000));
        if let Some(ms) = issued_at.filter(|ms| *ms < 0) {
            return Err(format!(
                "iat value must be null or non-negative; value given was \"{ms}\""
            ));
        }
        Ok(OAuthBearerToken {
            value: token.to_string(),
            principal_name,
            scope,
            lifetime_ms: expiration,
            start_time_ms: issued_at,
        })
    }
}

// ---------------------------------------------------------------------------------------
// The server exchange
// ---------------------------------------------------------------------------------------

/// Where an [`OAuthBearerServer`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OAuthBearerServerState {
    /// Waiting for the initial response.
    ReceiveClientFirstMessage,
    /// The token was refused and the JSON error sent: waiting for the client's `%x01`
    /// (any other message is taken as a new initial response, as Kafka does).
    ReceiveClientErrorAck,
    Complete,
    Failed,
}

impl fmt::Display for OAuthBearerServerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OAuthBearerServerState::ReceiveClientFirstMessage => "RECEIVE_CLIENT_FIRST_MESSAGE",
            OAuthBearerServerState::ReceiveClientErrorAck => "RECEIVE_CLIENT_ERROR_ACK",
            OAuthBearerServerState::Complete => "COMPLETE",
            OAuthBearerServerState::Failed => "FAILED",
        })
    }
}

/// The server side of one OAUTHBEARER exchange (Kafka's `OAuthBearerSaslServer`):
///
/// 1. the initial response is parsed (a malformed one fails the exchange);
/// 2. its token is validated: a valid one completes the exchange with an empty challenge
///    (after the authorization id check); a refused one is answered with the JSON error
///    challenge ([`TokenValidationError::error_response`]);
/// 3. after the error, the client's `%x01` fails the exchange with that JSON as the message
///    ([`OAuthBearerError::TokenRejected`]).
///
/// Every extension the client sent is accepted (both of Kafka's server callback handlers
/// accept all) and available as [`extensions`](OAuthBearerServer::extensions).
pub struct OAuthBearerServer {
    validator: Arc<OAuthBearerValidator>,
    state: OAuthBearerServerState,
    error_response: Option<String>,
    failure_reason: Option<String>,
    token: Option<OAuthBearerToken>,
    extensions: BTreeMap<String, String>,
}

impl fmt::Debug for OAuthBearerServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthBearerServer")
            .field("state", &self.state)
            .field("token", &self.token)
            .field("failure_reason", &self.failure_reason)
            .finish()
    }
}

impl OAuthBearerServer {
    pub fn new(validator: Arc<OAuthBearerValidator>) -> OAuthBearerServer {
        OAuthBearerServer {
            validator,
            state: OAuthBearerServerState::ReceiveClientFirstMessage,
            error_response: None,
            failure_reason: None,
            token: None,
            extensions: BTreeMap::new(),
        }
    }

    pub fn state(&self) -> OAuthBearerServerState {
        self.state
    }

    pub fn is_complete(&self) -> bool {
        self.state == OAuthBearerServerState::Complete
    }

    /// Handles a client message with the clock's time; the challenge to send back.
    pub fn evaluate_response(&mut self, response: &[u8]) -> Result<Vec<u8>, OAuthBearerError> {
        self.evaluate_response_at(response, now_ms())
    }

    /// Handles a client message at `now_ms` (ms since the epoch); the challenge to send back
    /// (empty when complete, the JSON error when the token was refused).
    pub fn evaluate_response_at(
        &mut self,
        response: &[u8],
        now_ms: i64,
    ) -> Result<Vec<u8>, OAuthBearerError> {
        if matches!(
            self.state,
            OAuthBearerServerState::Complete | OAuthBearerServerState::Failed
        ) {
            return Err(OAuthBearerError::UnexpectedServerMessage { state: self.state });
        }
        if response == [KVSEP] {
            if let Some(error_response) = self.error_response.take() {
                tracing::debug!("Received %x01 response from client after it received our error");
                self.state = OAuthBearerServerState::Failed;
                return Err(OAuthBearerError::TokenRejected { error_response });
            }
        }
        self.error_response = None;
        let initial = match ClientInitialResponse::parse(response) {
            Ok(initial) => initial,
            Err(e) => {
                tracing::debug!("{e}");
                self.failure_reason = Some(e.to_string());
                self.state = OAuthBearerServerState::Failed;
                return Err(e);
            }
        };
        let token = match self.validator.validate(initial.token(), now_ms) {
            Ok(token) => token,
            Err(e) => {
                tracing::debug!("OAUTHBEARER token refused: {}", e.reason);
                let error_response = e.error_response();
                self.failure_reason = Some(e.reason);
                self.error_response = Some(error_response.clone());
                self.state = OAuthBearerServerState::ReceiveClientErrorAck;
                return Ok(error_response.into_bytes());
            }
        };
        let authorization_id = initial.authorization_id();
        if !authorization_id.is_empty() && authorization_id != token.principal_name {
            let e = OAuthBearerError::AuthorizationIdMismatch {
                authorization_id: authorization_id.to_string(),
                principal_name: token.principal_name.clone(),
            };
            self.failure_reason = Some(e.to_string());
            self.state = OAuthBearerServerState::Failed;
            return Err(e);
        }
        tracing::debug!("Successfully authenticate User={}", token.principal_name);
        self.extensions = initial.extensions;
        self.token = Some(token);
        self.failure_reason = None;
        self.state = OAuthBearerServerState::Complete;
        Ok(Vec::new())
    }

    /// The authenticated principal name (the token's principal claim), once complete.
    pub fn principal_name(&self) -> Option<&str> {
        self.token.as_ref().map(|t| t.principal_name.as_str())
    }

    /// The validated token, once complete (Kafka's `OAUTHBEARER.token` property).
    pub fn token(&self) -> Option<&OAuthBearerToken> {
        self.token.as_ref()
    }

    /// When the token expires, ms since the epoch (Kafka's credential lifetime property).
    pub fn credential_expiration_ms(&self) -> Option<i64> {
        self.token.as_ref().map(|t| t.lifetime_ms)
    }

    /// The client's SASL extensions, once complete.
    pub fn extensions(&self) -> &BTreeMap<String, String> {
        &self.extensions
    }

    /// Why the last message was refused (for the broker's log; never for the client).
    pub fn failure_reason(&self) -> Option<&str> {
        self.failure_reason.as_deref()
    }

    /// KIP-368's session lifetime as Kafka's `SaslServerAuthenticator` computes it at
    /// `authentication_end_ms`: the time left until the token expires, capped by
    /// `connections.max.reauth.ms` when that is positive, never negative. `None` before
    /// completion.
    pub fn session_lifetime_ms(
        &self,
        authentication_end_ms: i64,
        connections_max_reauth_ms: i64,
    ) -> Option<i64> {
        let remaining = self
            .credential_expiration_ms()?
            .saturating_sub(authentication_end_ms);
        let lifetime = if connections_max_reauth_ms > 0 {
            remaining.min(connections_max_reauth_ms)
        } else {
            remaining
        };
        Some(lifetime.max(0))
    }
}

// ---------------------------------------------------------------------------------------
// The client side
// ---------------------------------------------------------------------------------------

/// Where an [`OAuthBearerClient`] is (Kafka's `OAuthBearerSaslClient.State`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OAuthBearerClientState {
    SendClientFirstMessage,
    ReceiveServerFirstMessage,
    ReceiveServerMessageAfterFailure,
    Complete,
    Failed,
}

impl fmt::Display for OAuthBearerClientState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OAuthBearerClientState::SendClientFirstMessage => "SEND_CLIENT_FIRST_MESSAGE",
            OAuthBearerClientState::ReceiveServerFirstMessage => "RECEIVE_SERVER_FIRST_MESSAGE",
            OAuthBearerClientState::ReceiveServerMessageAfterFailure => {
                "RECEIVE_SERVER_MESSAGE_AFTER_FAILURE"
            }
            OAuthBearerClientState::Complete => "COMPLETE",
            OAuthBearerClientState::Failed => "FAILED",
        })
    }
}

/// The client side of the exchange (Kafka's `OAuthBearerSaslClient`).
#[derive(Debug)]
pub struct OAuthBearerClient {
    initial: ClientInitialResponse,
    state: OAuthBearerClientState,
    server_error: Option<String>,
}

impl OAuthBearerClient {
    pub fn new(initial: ClientInitialResponse) -> OAuthBearerClient {
        OAuthBearerClient {
            initial,
            state: OAuthBearerClientState::SendClientFirstMessage,
            server_error: None,
        }
    }

    pub fn state(&self) -> OAuthBearerClientState {
        self.state
    }

    pub fn is_complete(&self) -> bool {
        self.state == OAuthBearerClientState::Complete
    }

    /// The server's JSON error challenge, if it refused the token.
    pub fn server_error(&self) -> Option<&str> {
        self.server_error.as_deref()
    }

    /// Kafka's `evaluateChallenge`: the message to send (`None` when complete). The first
    /// call takes the empty challenge and gives the initial response; then an empty
    /// challenge completes, and a non-empty one (the server's error) is answered `%x01`.
    pub fn evaluate_challenge(
        &mut self,
        challenge: &[u8],
    ) -> Result<Option<Vec<u8>>, OAuthBearerError> {
        match self.state {
            OAuthBearerClientState::SendClientFirstMessage => {
                if !challenge.is_empty() {
                    self.state = OAuthBearerClientState::Failed;
                    return Err(OAuthBearerError::ExpectedEmptyChallenge);
                }
                self.state = OAuthBearerClientState::ReceiveServerFirstMessage;
                Ok(Some(self.initial.to_bytes()))
            }
            OAuthBearerClientState::ReceiveServerFirstMessage => {
                if challenge.is_empty() {
                    self.state = OAuthBearerClientState::Complete;
                    Ok(None)
                } else {
                    self.server_error = Some(String::from_utf8_lossy(challenge).into_owned());
                    self.state = OAuthBearerClientState::ReceiveServerMessageAfterFailure;
                    Ok(Some(vec![KVSEP]))
                }
            }
            state => {
                self.state = OAuthBearerClientState::Failed;
                Err(OAuthBearerError::UnexpectedClientMessage { state })
            }
        }
    }
}

/// An unsigned JWT (`{"alg":"none"}`, the claims, an empty signature) as Kafka's
/// `OAuthBearerUnsecuredLoginCallbackHandler` makes them.
pub fn unsecured_jws(claims: &Map<String, Value>) -> String {
    let header = B64URL.encode(br#"{"alg":"none"}"#);
    let payload = B64URL.encode(Value::Object(claims.clone()).to_string());
    format!("{header}.{payload}.")
}

/// An unsecured token for `principal` (`sub`), issued at `now_ms` and valid for
/// `lifetime_seconds`, with a `scope` list claim when `scope` is not empty; `exp` and `iat`
/// in seconds with a fraction, as Kafka writes them.
pub fn unsecured_token(
    principal: &str,
    scope: &[&str],
    now_ms: i64,
    lifetime_seconds: i64,
) -> String {
    let issued_at = now_ms as f64 / 1000.0;
    let mut claims = Map::new();
    claims.insert(
        "exp".to_string(),
        Value::from(issued_at + lifetime_seconds as f64),
    );
    claims.insert("iat".to_string(), Value::from(issued_at));
    claims.insert("sub".to_string(), Value::from(principal));
    if !scope.is_empty() {
        claims.insert("scope".to_string(), Value::from(scope.to_vec()));
    }
    unsecured_jws(&claims)
}

// ---------------------------------------------------------------------------------------
// Test support: signed tokens and their JWKS
// ---------------------------------------------------------------------------------------

/// Signs JWTs with a key made at run time and publishes it as a JWK (tests only).
#[cfg(any(test, feature = "test-pki"))]
pub struct TestJwtSigner {
    kid: String,
    algorithm: Algorithm,
    key: jsonwebtoken::EncodingKey,
    jwk: Value,
}

#[cfg(any(test, feature = "test-pki"))]
impl TestJwtSigner {
    /// A new ECDSA P-256 key (ES256).
    pub fn es256(kid: &str) -> TestJwtSigner {
        Self::ecdsa(
            kid,
            &rcgen::PKCS_ECDSA_P256_SHA256,
            Algorithm::ES256,
            "P-256",
        )
    }

    /// A new ECDSA P-384 key (ES384).
    pub fn es384(kid: &str) -> TestJwtSigner {
        Self::ecdsa(
            kid,
            &rcgen::PKCS_ECDSA_P384_SHA384,
            Algorithm::ES384,
            "P-384",
        )
    }

    fn ecdsa(
        kid: &str,
        rcgen_alg: &'static rcgen::SignatureAlgorithm,
        algorithm: Algorithm,
        crv: &str,
    ) -> TestJwtSigner {
        let key_pair = rcgen::KeyPair::generate_for(rcgen_alg).expect("ECDSA key generation");
        let point = key_pair.public_key_raw();
        let half = (point.len() - 1) / 2;
        let jwk = serde_json::json!({
            "kty": "EC",
            "crv": crv,
            "x": B64URL.encode(&point[1..1 + half]),
            "y": B64URL.encode(&point[1 + half..]),
            "kid": kid,
            "use": "sig",
            "alg": format!("{algorithm:?}"),
        });
        TestJwtSigner {
            kid: kid.to_string(),
            algorithm,
            key: jsonwebtoken::EncodingKey::from_ec_der(&key_pair.serialize_der()),
            jwk,
        }
    }

    /// An RSA key given as PKCS#1 DER with its public modulus and exponent (base64url),
    /// for RS* and PS* (ring makes no RSA keys).
    pub fn rsa(
        kid: &str,
        algorithm: Algorithm,
        pkcs1_der: &[u8],
        n: &str,
        e: &str,
    ) -> TestJwtSigner {
        TestJwtSigner {
            kid: kid.to_string(),
            algorithm,
            key: jsonwebtoken::EncodingKey::from_rsa_der(pkcs1_der),
            jwk: serde_json::json!({
                "kty": "RSA", "n": n, "e": e, "kid": kid, "use": "sig",
                "alg": format!("{algorithm:?}"),
            }),
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        self.jwk.clone()
    }

    /// A JWKS document of these keys.
    pub fn jwks(signers: &[&TestJwtSigner]) -> String {
        serde_json::json!({ "keys": signers.iter().map(|s| s.jwk()).collect::<Vec<_>>() })
            .to_string()
    }

    /// A JWS of `claims` with the header `{"alg":..,"typ":"JWT","kid":..}`.
    pub fn sign(&self, claims: &Value) -> String {
        let header = serde_json::json!({
            "alg": format!("{:?}", self.algorithm),
            "typ": "JWT",
            "kid": self.kid,
        });
        self.sign_with_header(&header, claims)
    }

    /// A JWS of `claims` with this header as given, signed with this key and algorithm.
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let message = format!(
            "{}.{}",
            B64URL.encode(header.to_string()),
            B64URL.encode(claims.to_string())
        );
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &self.key, self.algorithm)
            .expect("signing a test JWT");
        format!("{message}.{signature}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::path::Path;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A 2048-bit RSA key (PKCS#1 DER, base64) made for these tests only: ring makes no RSA keys.
    const TEST_RSA_PKCS1: &str = concat!(
        "MIIEowIBAAKCAQEAl/W3/U6hv4XdGc8+gYqDVgIa+eEOcNeD+ILaZ2c62QUxCL6k/bKonFYqUBbxdNbd1MhPAal7",
        "DvWZWjurH4OTu96o69dHBuLlcVjkHjgKhKNNuqfPofI/UG+FPU4mvJrgEBG1FfRYDJD6iRgNH0v26+PQ5KuUwJym",
        "z/LJGBGebSAnHH6Rp712m8hA//3SUj+8erRyrF0Nig4sEFqtwC4UPXfh3ikDS1zFMHb4zg09W0Wb07Yfm7v8Kyxn",
        "xlO//KqZLRocuNfa/C952v+FKo7tsIAvVwuVbG9wbLJpGRuxaAN+039Z9jUsf1CQ9gkQM2Md/bQSIKgVeYPTb8lK",
        "c4nfLQIDAQABAoIBABAPm8B1YuGiBaYwchgReoOo6c5+076n/K4TsH9M2RqucooM0lXxH+KUNdksr50Mh7oxaK5R",
        "iizg1vJDS7kjOEZbSInSwVJQQXVrMoMiI7R0qSbBDVA90STQgKnj3HLDQMraAER/hJ3hZeV/CgYEiqbQd5fvraN0",
        "+ymP7OKzHAZG/aCP0m55Io3EUuoKttmZtxVW8V38dfiXreW8wteytlSx5IYyuMzOvlIaxb/nuxzM5k1AvmHF+aQ4",
        "pe7bhX9KGr/lynDMKtTjNM+GSU8/0tIrEtilnXFx4d+a1od9W0Id/1Qt0zzuTx4IGiGeMq+PnDY3rL/Iwwnk0pH+",
        "2ZzsLFECgYEA1W/qKYAhtKgQptZJFAjsXbriCKMafJqa9Q+mFfBKn2VV+v93ofm1b/9evqG/ee+pHuGb8opLv3aI",
        "J7bRxPh//BDu1nyk/CXsGgB+n06mQ6/+JLBKI4CV/PWK53XWYIQuY3FyTPQVHcPjtt7nvmTS+RmnWigY/MIifLsl",
        "8pxYm90CgYEAtkNaOcegJ5cyaq+VDkCVKHllrPX3CNNf8Qjnf/wbX4EdirrVmWbibvKv9ITRvYY9O92wv3Vz1/zD",
        "lcaN0l6I38OWisxsifXjhB6TrcOyQlDuzxgpyKjvEayy6rm3xCnZeFOHq/4tnpHpvvuOciBgpIz6/TtoGl1MwRsN",
        "Vcw+A5ECgYA1ELwhUVAQAHETadeFeap6q0ojZ5ngPPgl0ZwzfCixdJpp6zYtOU5Y6B8AOmrGwEVF/kWtiaDHm4rC",
        "hPumgzoey372KMtEPZFz7YeNyBoiXhFLweDM7t1bpRjB71Q7buGxq7UFWPIfEmL9RnJLrfmeITiwe6OqxAGbDVSj",
        "+yc0qQKBgQCEfjejkwtIXHAI//Rx9N65Gm6gKflXkBjJZjirYAAiEAECrUjDB/iIwKDKNpcll+UBlOl8dIwusY8Y",
        "XMsR5yjGyS6xXWN1cqreiz+9bGo0LRM8tosBVFTd21YArdr5nZZ6EvaoP9C32cg6zjFBo2m9lMKLvViy+annIpwy",
        "B5P5EQKBgGcY6hxYmRzjmElSFGyWaqcOm+TvHuh8lpWfRUYEIVxwGbdKJE1ob/H2abE5GOXK51rB1oT0REiPAhj4",
        "F6xr70/M3MtvyIjSCAtN7G/QGg5h0o3ejIq8HHZbLqHCpq/e9UT3bPw/uWjg0oNgSIl8VuXhRH/YiLRT0FN7Lr+w",
        "dtYt",
    );
    const TEST_RSA_N: &str = concat!(
        "l_W3_U6hv4XdGc8-gYqDVgIa-eEOcNeD-ILaZ2c62QUxCL6k_bKonFYqUBbxdNbd1MhPAal7DvWZWjurH4OTu96o",
        "69dHBuLlcVjkHjgKhKNNuqfPofI_UG-FPU4mvJrgEBG1FfRYDJD6iRgNH0v26-PQ5KuUwJymz_LJGBGebSAnHH6R",
        "p712m8hA__3SUj-8erRyrF0Nig4sEFqtwC4UPXfh3ikDS1zFMHb4zg09W0Wb07Yfm7v8KyxnxlO__KqZLRocuNfa",
        "_C952v-FKo7tsIAvVwuVbG9wbLJpGRuxaAN-039Z9jUsf1CQ9gkQM2Md_bQSIKgVeYPTb8lKc4nfLQ",
    );
    /// Now, in the tests' tokens (seconds and ms since the epoch).
    const NOW: i64 = 1_700_000_000;
    const NOW_MS: i64 = NOW * 1000;

    fn temp_dir() -> PathBuf {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "moldau-oauthbearer-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            now_ms()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn rsa_signer(kid: &str, algorithm: Algorithm) -> TestJwtSigner {
        let der = base64::engine::general_purpose::STANDARD
            .decode(TEST_RSA_PKCS1)
            .unwrap();
        TestJwtSigner::rsa(kid, algorithm, &der, TEST_RSA_N, "AQAB")
    }

    fn props(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    fn jaas(options: &[(&str, &str)]) -> JaasEntry {
        JaasEntry {
            login_module: OAUTHBEARER_LOGIN_MODULE.to_string(),
            control_flag: crate::jaas::ControlFlag::Required,
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn write_jwks(dir: &Path, jwks: &str) -> PathBuf {
        let path = dir.join("jwks.json");
        std::fs::write(&path, jwks).unwrap();
        path
    }

    /// A test's JWKS file, removed (with its directory) when dropped.
    struct JwksFile(PathBuf);

    impl AsRef<Path> for JwksFile {
        fn as_ref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for JwksFile {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    /// A secured validator over a JWKS file holding these keys, with extra broker keys.
    fn secured(
        signers: &[&TestJwtSigner],
        extra: &[(&str, &str)],
    ) -> (Arc<OAuthBearerValidator>, JwksFile) {
        let dir = temp_dir();
        let path = write_jwks(&dir, &TestJwtSigner::jwks(signers));
        let url = format!("file://{}", path.display());
        let mut pairs = vec![(SASL_OAUTHBEARER_JWKS_ENDPOINT_URL, url.as_str())];
        pairs.extend_from_slice(extra);
        let settings = OAuthBearerSettings::from_props(props(&pairs), None).unwrap();
        assert!(!settings.is_unsecured());
        (
            Arc::new(OAuthBearerValidator::new(&settings).unwrap()),
            JwksFile(path),
        )
    }

    fn claims() -> Value {
        json!({"sub": "alice", "iat": NOW - 10, "exp": NOW + 3600, "scope": "read"})
    }

    fn with(mut claims: Value, key: &str, value: Value) -> Value {
        claims[key] = value;
        claims
    }

    fn without(mut claims: Value, key: &str) -> Value {
        claims.as_object_mut().unwrap().remove(key);
        claims
    }

    fn reason(result: Result<OAuthBearerToken, TokenValidationError>) -> String {
        let e = result.expect_err("the token should be refused");
        assert_eq!(e.status, "invalid_token");
        assert_eq!(e.error_response(), r#"{"status":"invalid_token"}"#);
        e.reason
    }

    // --- secured validation ---

    #[test]
    fn valid_signed_tokens_against_a_jwks_file() {
        let es256 = TestJwtSigner::es256("k1");
        let es384 = TestJwtSigner::es384("k2");
        let rs256 = rsa_signer("k3", Algorithm::RS256);
        let ps256 = rsa_signer("k4", Algorithm::PS256);
        let (v, _) = secured(&[&es256, &es384, &rs256, &ps256], &[]);
        for signer in [&es256, &es384, &rs256, &ps256] {
            let token = signer.sign(&claims());
            let t = v.validate(&token, NOW_MS).unwrap();
            assert_eq!(t.principal_name, "alice");
            assert_eq!(t.scope, BTreeSet::from(["read".to_string()]));
            assert_eq!(t.lifetime_ms, (NOW + 3600) * 1000);
            assert_eq!(t.start_time_ms, Some((NOW - 10) * 1000));
            assert_eq!(t.value, token);
        }
    }

    #[test]
    fn a_key_is_found_without_kid_and_the_jwk_alg_must_match() {
        let signer = TestJwtSigner::es256("k1");
        let (v, _) = secured(&[&signer], &[]);
        let token = signer.sign_with_header(&json!({"alg": "ES256"}), &claims());
        assert!(v.validate(&token, NOW_MS).is_ok());
        // The JWK says ES256: an RS256 header cannot use it (nor any other key).
        let token = rsa_signer("k1", Algorithm::RS256).sign(&claims());
        assert!(reason(v.validate(&token, NOW_MS))
            .contains("Unable to find a suitable verification key"));
    }

    #[test]
    fn wrong_kid_is_refused() {
        let signer = TestJwtSigner::es256("k1");
        let (v, _) = secured(&[&signer], &[]);
        let other = TestJwtSigner::es256("k2");
        let r = reason(v.validate(&other.sign(&claims()), NOW_MS));
        assert!(
            r.starts_with(
                "Could not validate the access token: Unable to find a suitable verification key"
            ),
            "{r}"
        );
    }

    #[test]
    fn bad_signature_is_refused() {
        let signer = TestJwtSigner::es256("k1");
        let (v, _) = secured(&[&signer], &[]);
        // Another key under the same kid.
        let impostor = TestJwtSigner::es256("k1");
        let r = reason(v.validate(&impostor.sign(&claims()), NOW_MS));
        assert!(r.contains("JWS signature is invalid"), "{r}");
        // A token whose claims were changed after signing.
        let token = signer.sign(&claims());
        let parts: Vec<&str> = token.split('.').collect();
        let forged = B64URL.encode(with(claims(), "sub", json!("mallory")).to_string());
        let forged = format!("{}.{forged}.{}", parts[0], parts[2]);
        assert!(reason(v.validate(&forged, NOW_MS)).contains("JWS signature is invalid"));
        // Garbage in the signature never panics.
        let garbage = format!("{}.{}.!!!", parts[0], parts[1]);
        assert!(reason(v.validate(&garbage, NOW_MS)).contains("JWS signature is invalid"));
    }

    #[test]
    fn unsigned_and_confused_algorithms_are_refused() {
        let signer = rsa_signer("k1", Algorithm::RS256);
        let (v, _) = secured(&[&signer], &[]);
        let none = unsecured_jws(claims().as_object().unwrap());
        assert!(reason(v.validate(&none, NOW_MS)).contains("Malformed JWT"));
        let none = format!("{}sig", none);
        assert!(reason(v.validate(&none, NOW_MS)).contains("'none'"));
        // HS256 keyed with the public modulus: no oct key in the set.
        let hs = TestJwtSigner {
            kid: "k1".to_string(),
            algorithm: Algorithm::HS256,
            key: jsonwebtoken::EncodingKey::from_secret(TEST_RSA_N.as_bytes()),
            jwk: Value::Null,
        };
        assert!(reason(v.validate(&hs.sign(&claims()), NOW_MS))
            .contains("Unable to find a suitable verification key"));
        let unknown = signer.sign_with_header(&json!({"alg": "ES512", "kid": "k1"}), &claims());
        assert!(reason(v.validate(&unknown, NOW_MS)).contains("unsupported"));
        let crit = signer.sign_with_header(
            &json!({"alg": "RS256", "kid": "k1", "crit": ["exp"]}),
            &claims(),
        );
        assert!(reason(v.validate(&crit, NOW_MS)).contains("critical"));
    }

    #[test]
    fn expiry_is_checked_with_the_clock_skew() {
        let signer = TestJwtSigner::es256("k1");
        let (v, _) = secured(&[&signer], &[]);
        // Expired 10 s ago: within the default 30 s skew.
        let token = signer.sign(&with(claims(), "exp", json!(NOW - 10)));
        assert!(v.validate(&token, NOW_MS).is_ok());
        // Expired 31 s ago: beyond it.
        let token = signer.sign(&with(claims(), "exp", json!(NOW - 31)));
        let r = reason(v.validate(&token, NOW_MS));
        assert!(r.contains("The JWT is no longer valid"), "{r}");
        assert!(r.contains("30 seconds of leeway"), "{r}");
        // No skew configured.
        let (strict, _) = secured(&[&signer], &[(SASL_OAUTHBEARER_CLOCK_SKEW_SECONDS, "0")]);
        let token = signer.sign(&with(claims(), "exp", json!(NOW)));
        assert!(reason(strict.validate(&token, NOW_MS)).contains("no longer valid"));
        let token = signer.sign(&with(claims(), "exp", json!(NOW + 1)));
        assert!(strict.validate(&token, NOW_MS).is_ok());
    }

    #[test]
    fn nbf_in_the_future_is_refused() {
        let signer = TestJwtSigner::es256("k1");
        let (v, _) = secured(&[&signer], &[]);
        let token = signer.sign(&with(claims(), "nbf", json!(NOW + 20)));
        assert!(v.validate(&token, NOW_MS).is_ok());
        let token = signer.sign(&with(claims(), "nbf", json!(NOW + 60)));
        assert!(reason(v.validate(&token, NOW_MS)).contains("not yet valid"));
        let token = signer.sign(&with(claims(), "nbf", json!("soon")));
        assert!(reason(v.validate(&token, NOW_MS)).contains("'nbf' claim is not the expected type"));
    }

    #[test]
    fn exp_and_iat_are_required() {
        let signer = TestJwtSigner::es256("k1");
        let (v, _) = secured(&[&signer], &[]);
        let r = reason(v.validate(&signer.sign(&without(claims(), "exp")), NOW_MS));
        assert!(r.contains("No Expiration Time (exp) claim present."), "{r}");
        let r = reason(v.validate(&signer.sign(&without(claims(), "iat")), NOW_MS));
        assert!(r.contains("No Issued At (iat) claim present."), "{r}");
        let token = signer.sign(&with(claims(), "iat", json!(NOW + 7200)));
        assert!(reason(v.validate(&token, NOW_MS)).contains("cannot be before the Issued At"));
        // A fractional exp is truncated to seconds (jose4j's NumericDate).
        let token = signer.sign(&with(claims(), "exp", json!(NOW as f64 + 100.9)));
        assert_eq!(
            v.validate(&token, NOW_MS).unwrap().lifetime_ms,
            (NOW + 100) * 1000
        );
    }

    #[test]
    fn audience_is_checked() {
        let signer = TestJwtSigner::es256("k1");
        let (v, _) = secured(
            &[&signer],
            &[(SASL_OAUTHBEARER_EXPECTED_AUDIENCE, "kafka, other")],
        );
        for aud in [json!("kafka"), json!(["x", "other"])] {
            assert!(v
                .validate(&signer.sign(&with(claims(), "aud", aud)), NOW_MS)
                .is_ok());
        }
        let r = reason(v.validate(&signer.sign(&with(claims(), "aud", json!("web"))), NOW_MS));
        assert!(r.contains("Audience (aud) claim [web] doesn't contain an acceptable identifier. Expected one of [kafka, other] as an aud value."), "{r}");
        let r = reason(v.validate(&signer.sign(&claims()), NOW_MS));
        assert!(r.contains("No Audience (aud) claim present."), "{r}");
        // No audience expected: a token naming one is refused anyway (jose4j's default).
        let (open, _) = secured(&[&signer], &[]);
        let r = reason(open.validate(&signer.sign(&with(claims(), "aud", json!("kafka"))), NOW_MS));
        assert!(
            r.contains("no expected audience value(s) were provided"),
            "{r}"
        );
    }

    #[test]
    fn issuer_is_checked() {
        let signer = TestJwtSigner::es256("k1");
        let (v, _) = secured(
            &[&signer],
            &[(SASL_OAUTHBEARER_EXPECTED_ISSUER, "https://idp.example/")],
        );
        let good = with(claims(), "iss", json!("https://idp.example/"));
        assert!(v.validate(&signer.sign(&good), NOW_MS).is_ok());
        let r = reason(v.validate(
            &signer.sign(&with(claims(), "iss", json!("https://evil.example/"))),
            NOW_MS,
        ));
        assert!(r.contains("Issuer (iss) claim value (https://evil.example/) doesn't match expected value of https://idp.example/"), "{r}");
        let r = reason(v.validate(&signer.sign(&claims()), NOW_MS));
        assert!(r.contains("No Issuer (iss) claim present"), "{r}");
        // Several problems are reported together, as jose4j does.
        let (both, _) = secured(
            &[&signer],
            &[
                (SASL_OAUTHBEARER_EXPECTED_ISSUER, "i"),
                (SASL_OAUTHBEARER_EXPECTED_AUDIENCE, "a"),
            ],
        );
        let r = reason(both.validate(&signer.sign(&claims()), NOW_MS));
        assert!(r.contains("No Audience") && r.contains("No Issuer"), "{r}");
    }

    #[test]
    fn subject_claim() {
        let signer = TestJwtSigner::es256("k1");
        let (v, _) = secured(&[&signer], &[]);
        let r = reason(v.validate(&signer.sign(&without(claims(), "sub")), NOW_MS));
        assert_eq!(r, "sub value must be non-null");
        let r = reason(v.validate(&signer.sign(&with(claims(), "sub", json!("  "))), NOW_MS));
        assert_eq!(r, "sub value must not contain only whitespace");
        let r = reason(v.validate(&signer.sign(&with(claims(), "sub", json!(7))), NOW_MS));
        assert_eq!(r, "Could not extract the 'sub' claim from the access token");
        let t = v
            .validate(&signer.sign(&with(claims(), "sub", json!(" bob "))), NOW_MS)
            .unwrap();
        assert_eq!(t.principal_name, "bob");
        let (custom, _) = secured(
            &[&signer],
            &[(SASL_OAUTHBEARER_SUB_CLAIM_NAME, "client_id")],
        );
        let token = signer.sign(&with(claims(), "client_id", json!("svc-1")));
        assert_eq!(
            custom.validate(&token, NOW_MS).unwrap().principal_name,
            "svc-1"
        );
        assert_eq!(
            reason(custom.validate(&signer.sign(&claims()), NOW_MS)),
            "client_id value must be non-null"
        );
    }

    #[test]
    fn scope_claim() {
        let signer = TestJwtSigner::es256("k1");
        let (v, _) = secured(&[&signer], &[]);
        let scope = |claims: Value| v.validate(&signer.sign(&claims), NOW_MS).map(|t| t.scope);
        // Kafka 4.1 takes a string scope as one item (it does not split at spaces).
        assert_eq!(
            scope(with(claims(), "scope", json!(" read write "))).unwrap(),
            BTreeSet::from(["read write".to_string()])
        );
        assert_eq!(
            scope(with(claims(), "scope", json!(["a", "b"]))).unwrap(),
            BTreeSet::from(["a".to_string(), "b".to_string()])
        );
        assert!(scope(without(claims(), "scope")).unwrap().is_empty());
        assert!(scope(with(claims(), "scope", json!(5))).unwrap().is_empty());
        assert_eq!(
            reason(scope(with(claims(), "scope", json!(["a", " a"]))).map(|_| claims_token())),
            "scope value must not contain duplicates - a already present"
        );
        assert_eq!(
            reason(scope(with(claims(), "scope", json!(["a", ""]))).map(|_| claims_token())),
            "scope value must be non-empty"
        );
        assert!(scope(with(claims(), "scope", json!(["a", 1]))).is_err());
        let (custom, _) = secured(&[&signer], &[(SASL_OAUTHBEARER_SCOPE_CLAIM_NAME, "scp")]);
        let t = custom
            .validate(&signer.sign(&with(claims(), "scp", json!(["x"]))), NOW_MS)
            .unwrap();
        assert_eq!(t.scope, BTreeSet::from(["x".to_string()]));
    }

    /// A placeholder token for `reason` over a scope result.
    fn claims_token() -> OAuthBearerToken {
        OAuthBearerToken {
            value: String::new(),
            principal_name: String::new(),
            scope: BTreeSet::new(),
            lifetime_ms: 0,
            start_time_ms: None,
        }
    }

    #[test]
    fn malformed_secured_tokens() {
        let signer = TestJwtSigner::es256("k1");
        let (v, _) = secured(&[&signer], &[]);
        for (token, expected) in [
            ("", "Empty JWT provided"),
            ("a.b", "but 2 sections provided"),
            ("a.b.c.d", "but 4 sections provided"),
            ("a..c", "payload section missing"),
            ("!!.b.c", "Unable to parse the JWS header"),
            ("e30.b.c", "'alg'"),
        ] {
            let r = reason(v.validate(token, NOW_MS));
            assert!(r.contains(expected), "{token}: {r}");
        }
    }

    #[test]
    fn jwks_file_is_read_again_when_it_changes() {
        let old = TestJwtSigner::es256("old");
        let new = TestJwtSigner::es256("new");
        let (v, path) = secured(
            &[&old],
            &[
                (SASL_OAUTHBEARER_JWKS_ENDPOINT_RETRY_BACKOFF_MS, "10"),
                (SASL_OAUTHBEARER_JWKS_ENDPOINT_RETRY_BACKOFF_MAX_MS, "50"),
            ],
        );
        assert!(v.validate(&new.sign(&claims()), NOW_MS).is_err());
        std::fs::write(&path, TestJwtSigner::jwks(&[&new])).unwrap();
        v.refresh_jwks().unwrap();
        assert!(v.validate(&new.sign(&claims()), NOW_MS).is_ok());
        assert!(v.validate(&old.sign(&claims()), NOW_MS).is_err());
        // A broken document leaves the keys as they were.
        std::fs::write(&path, "{not json").unwrap();
        assert!(v.refresh_jwks().is_err());
        assert!(v.validate(&new.sign(&claims()), NOW_MS).is_ok());
    }

    #[test]
    fn an_unknown_kid_expedites_a_refresh() {
        let old = TestJwtSigner::es256("old");
        let new = TestJwtSigner::es256("new");
        let (v, path) = secured(
            &[&old],
            &[
                (SASL_OAUTHBEARER_JWKS_ENDPOINT_RETRY_BACKOFF_MS, "0"),
                (SASL_OAUTHBEARER_JWKS_ENDPOINT_RETRY_BACKOFF_MAX_MS, "0"),
            ],
        );
        std::fs::write(&path, TestJwtSigner::jwks(&[&old, &new])).unwrap();
        let token = new.sign(&claims());
        // The first failure schedules the refresh in the background.
        assert!(v.validate(&token, NOW_MS).is_err());
        let deadline = Instant::now() + Duration::from_secs(10);
        while v.validate(&token, NOW_MS).is_err() {
            assert!(Instant::now() < deadline, "the JWKS was not refreshed");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn missing_kid_refreshes_are_rate_limited() {
        let signer = TestJwtSigner::es256("k1");
        let (v, _) = secured(&[&signer], &[]);
        let ValidatorKind::Secured(s) = &v.kind else {
            unreachable!()
        };
        assert!(s.jwks.maybe_expedite_refresh("a"));
        assert!(!s.jwks.maybe_expedite_refresh("a"));
        assert!(s.jwks.maybe_expedite_refresh("b"));
        assert!(!s.jwks.maybe_expedite_refresh(&"x".repeat(1001)));
        for i in 0..MISSING_KEY_ID_CACHE_MAX_ENTRIES {
            s.jwks.maybe_expedite_refresh(&format!("k{i}"));
        }
        // "a" fell out of the 16 remembered ids.
        assert!(s.jwks.maybe_expedite_refresh("a"));
    }

    /// Serves `body` to each HTTP request on `stream` (one request per connection).
    fn serve_http(mut stream: impl std::io::Read + std::io::Write, body: &str) {
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes());
        let _ = stream.flush();
    }

    #[test]
    fn jwks_over_http() {
        let signer = TestJwtSigner::es256("k1");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let body = TestJwtSigner::jwks(&[&signer]);
        let server = std::thread::spawn(move || {
            // The startup fetch and one refresh.
            for _ in 0..2 {
                let (stream, _) = listener.accept().unwrap();
                serve_http(stream, &body);
            }
        });
        let url = format!("http://127.0.0.1:{port}/jwks");
        let settings = OAuthBearerSettings::from_props(
            props(&[(SASL_OAUTHBEARER_JWKS_ENDPOINT_URL, &url)]),
            None,
        )
        .unwrap();
        let v = OAuthBearerValidator::new(&settings).unwrap();
        assert!(v.validate(&signer.sign(&claims()), NOW_MS).is_ok());
        v.refresh_jwks().unwrap();
        server.join().unwrap();
        assert!(v.validate(&signer.sign(&claims()), NOW_MS).is_ok());
    }

    #[test]
    fn jwks_over_https_with_a_trust_store_from_the_jaas_options() {
        let pki = crate::test_pki::TestPki::new();
        let (chain, key, _) = pki.leaf_pem("localhost", &["localhost"]);
        use rustls::pki_types::pem::PemObject;
        let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(chain.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        );
        let signer = TestJwtSigner::es256("k1");
        let body = TestJwtSigner::jwks(&[&signer]);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let conn = rustls::ServerConnection::new(config).unwrap();
            serve_http(rustls::StreamOwned::new(conn, tcp), &body);
        });
        let url = format!("https://localhost:{port}/.well-known/jwks.json");
        let entry = jaas(&[
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.certificates", pki.ca_pem.as_str()),
        ]);
        let settings = OAuthBearerSettings::from_props(
            props(&[(SASL_OAUTHBEARER_JWKS_ENDPOINT_URL, &url)]),
            Some(&entry),
        )
        .unwrap();
        let OAuthBearerValidation::Secured(secured) = &settings.validation else {
            unreachable!()
        };
        assert!(secured.jwks_tls.is_some());
        let v = OAuthBearerValidator::new(&settings).unwrap();
        server.join().unwrap();
        assert!(v.validate(&signer.sign(&claims()), NOW_MS).is_ok());
    }

    #[test]
    fn https_without_a_trust_store_does_not_trust_a_private_ca() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let pki = crate::test_pki::TestPki::new();
        let (chain, key, _) = pki.leaf_pem("localhost", &["localhost"]);
        use rustls::pki_types::pem::PemObject;
        let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(chain.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        );
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let conn = rustls::ServerConnection::new(config).unwrap();
            serve_http(rustls::StreamOwned::new(conn, tcp), "{}");
        });
        let url = format!("https://localhost:{port}/jwks");
        let settings = OAuthBearerSettings::from_props(
            props(&[(SASL_OAUTHBEARER_JWKS_ENDPOINT_URL, &url)]),
            None,
        )
        .unwrap();
        let e = OAuthBearerValidator::new(&settings).unwrap_err();
        assert_eq!(e.key, SASL_OAUTHBEARER_JWKS_ENDPOINT_URL);
        server.join().unwrap();
    }

    // --- settings ---

    #[test]
    fn settings_choose_the_validator() {
        let s = OAuthBearerSettings::from_props(props(&[]), None).unwrap();
        assert!(s.is_unsecured());
        let OAuthBearerValidation::Unsecured(o) = &s.validation else {
            unreachable!()
        };
        assert_eq!(o, &UnsecuredValidatorOptions::default());

        let s = OAuthBearerSettings::from_props(
            props(&[(
                SASL_SERVER_CALLBACK_HANDLER_CLASS,
                VALIDATOR_CALLBACK_HANDLER,
            )]),
            None,
        );
        assert_eq!(s.unwrap_err().key, SASL_OAUTHBEARER_JWKS_ENDPOINT_URL);

        let s = OAuthBearerSettings::from_props(
            props(&[
                (
                    SASL_SERVER_CALLBACK_HANDLER_CLASS,
                    UNSECURED_VALIDATOR_CALLBACK_HANDLER,
                ),
                (
                    SASL_OAUTHBEARER_JWKS_ENDPOINT_URL,
                    "https://idp.example/jwks",
                ),
            ]),
            None,
        )
        .unwrap();
        assert!(s.is_unsecured());

        let e = OAuthBearerSettings::from_props(
            props(&[(SASL_SERVER_CALLBACK_HANDLER_CLASS, "com.example.Custom")]),
            None,
        )
        .unwrap_err();
        assert_eq!(e.key, SASL_SERVER_CALLBACK_HANDLER_CLASS);

        let s = OAuthBearerSettings::from_props(
            props(&[
                (
                    SASL_SERVER_CALLBACK_HANDLER_CLASS,
                    DEPRECATED_VALIDATOR_CALLBACK_HANDLER,
                ),
                (
                    SASL_OAUTHBEARER_JWKS_ENDPOINT_URL,
                    "https://idp.example/jwks",
                ),
                (SASL_OAUTHBEARER_EXPECTED_AUDIENCE, " a , b,c "),
                (SASL_OAUTHBEARER_EXPECTED_ISSUER, " "),
            ]),
            None,
        )
        .unwrap();
        let OAuthBearerValidation::Secured(secured) = &s.validation else {
            unreachable!()
        };
        assert_eq!(
            secured.jwks_endpoint,
            JwksEndpoint::Http("https://idp.example/jwks".into())
        );
        assert_eq!(secured.expected_audience, ["a", "b", "c"]);
        assert_eq!(secured.expected_issuer, None);
        assert_eq!(secured.jwks_refresh_ms, 3_600_000);
        assert_eq!(secured.jwks_retry_backoff_ms, 100);
        assert_eq!(secured.jwks_retry_backoff_max_ms, 10_000);
        assert_eq!(secured.clock_skew_seconds, 30);
        assert_eq!(secured.scope_claim_name, "scope");
        assert_eq!(secured.sub_claim_name, "sub");
        assert!(secured.jwks_tls.is_none());
    }

    #[test]
    fn settings_errors_name_the_key() {
        let url = (
            SASL_OAUTHBEARER_JWKS_ENDPOINT_URL,
            "https://idp.example/jwks",
        );
        for (pairs, key, text) in [
            (
                vec![(SASL_OAUTHBEARER_JWKS_ENDPOINT_URL, "ftp://x/y")],
                SASL_OAUTHBEARER_JWKS_ENDPOINT_URL,
                "invalid protocol (ftp)",
            ),
            (
                vec![(SASL_OAUTHBEARER_JWKS_ENDPOINT_URL, "/etc/jwks.json")],
                SASL_OAUTHBEARER_JWKS_ENDPOINT_URL,
                "no protocol",
            ),
            (
                vec![(SASL_OAUTHBEARER_JWKS_ENDPOINT_URL, "https://")],
                SASL_OAUTHBEARER_JWKS_ENDPOINT_URL,
                "malformed",
            ),
            (
                vec![url, (SASL_OAUTHBEARER_JWKS_ENDPOINT_REFRESH_MS, "0")],
                SASL_OAUTHBEARER_JWKS_ENDPOINT_REFRESH_MS,
                "positive",
            ),
            (
                vec![url, (SASL_OAUTHBEARER_JWKS_ENDPOINT_REFRESH_MS, "soon")],
                SASL_OAUTHBEARER_JWKS_ENDPOINT_REFRESH_MS,
                "LONG",
            ),
            (
                vec![url, (SASL_OAUTHBEARER_JWKS_ENDPOINT_RETRY_BACKOFF_MS, "-1")],
                SASL_OAUTHBEARER_JWKS_ENDPOINT_RETRY_BACKOFF_MS,
                "non-negative",
            ),
            (
                vec![
                    url,
                    (SASL_OAUTHBEARER_JWKS_ENDPOINT_RETRY_BACKOFF_MS, "20000"),
                ],
                SASL_OAUTHBEARER_JWKS_ENDPOINT_RETRY_BACKOFF_MAX_MS,
                "less than",
            ),
            (
                vec![url, (SASL_OAUTHBEARER_CLOCK_SKEW_SECONDS, "1.5")],
                SASL_OAUTHBEARER_CLOCK_SKEW_SECONDS,
                "INT",
            ),
            (
                vec![url, (SASL_OAUTHBEARER_SUB_CLAIM_NAME, " ")],
                SASL_OAUTHBEARER_SUB_CLAIM_NAME,
                "whitespace",
            ),
            (
                vec![
                    url,
                    (
                        SASL_OAUTHBEARER_JWT_VALIDATOR_CLASS,
                        "org.apache.kafka.common.security.oauthbearer.ClientJwtValidator",
                    ),
                ],
                SASL_OAUTHBEARER_JWT_VALIDATOR_CLASS,
                "not supported",
            ),
        ] {
            let e = OAuthBearerSettings::from_props(props(&pairs), None).unwrap_err();
            assert_eq!(e.key, key, "{e}");
            assert!(e.message.contains(text), "{e}");
        }
        // The file must exist, be a file and be readable: checked when the validator starts.
        let dir = temp_dir();
        for (url, text) in [
            (
                format!("file:{}/missing.json", dir.display()),
                "doesn't exist",
            ),
            (
                format!("file://{}", dir.display()),
                "references a directory",
            ),
        ] {
            let s = OAuthBearerSettings::from_props(
                props(&[(SASL_OAUTHBEARER_JWKS_ENDPOINT_URL, &url)]),
                None,
            )
            .unwrap();
            let e = OAuthBearerValidator::new(&s).unwrap_err();
            assert_eq!(e.key, SASL_OAUTHBEARER_JWKS_ENDPOINT_URL);
            assert!(e.message.contains(text), "{e}");
        }
        let path = write_jwks(&dir, "[]");
        let s = OAuthBearerSettings::from_props(
            props(&[(
                SASL_OAUTHBEARER_JWKS_ENDPOINT_URL,
                &format!("file://localhost{}", path.display()),
            )]),
            None,
        )
        .unwrap();
        let e = OAuthBearerValidator::new(&s).unwrap_err();
        assert!(e.message.contains("keys member"), "{e}");
        drop(JwksFile(path));
        // The JAAS entry must be OAuthBearerLoginModule's.
        let mut entry = jaas(&[]);
        entry.login_module = crate::jaas::PLAIN_LOGIN_MODULE.to_string();
        let e = OAuthBearerSettings::from_props(props(&[]), Some(&entry)).unwrap_err();
        assert_eq!(e.key, "sasl.jaas.config");
        // JWKS TLS settings that the HTTP client cannot honour are refused.
        let entry = jaas(&[("ssl.endpoint.identification.algorithm", "")]);
        let e = OAuthBearerSettings::from_props(props(&[url]), Some(&entry)).unwrap_err();
        assert!(
            e.key.ends_with("ssl.endpoint.identification.algorithm"),
            "{e}"
        );
    }

    #[test]
    fn unsecured_options_from_jaas() {
        let entry = jaas(&[
            (UNSECURED_VALIDATOR_PRINCIPAL_CLAIM_NAME, " client_id "),
            (UNSECURED_VALIDATOR_SCOPE_CLAIM_NAME, ""),
            (UNSECURED_VALIDATOR_REQUIRED_SCOPE, " a  b "),
            (UNSECURED_VALIDATOR_ALLOWABLE_CLOCK_SKEW_MS, "500"),
        ]);
        let s = OAuthBearerSettings::from_props(props(&[]), Some(&entry)).unwrap();
        let OAuthBearerValidation::Unsecured(o) = s.validation else {
            unreachable!()
        };
        assert_eq!(o.principal_claim_name, "client_id");
        assert_eq!(o.scope_claim_name, "scope");
        assert_eq!(o.required_scope, ["a", "b"]);
        assert_eq!(o.allowable_clock_skew_ms, 500);
        for (option, value, text) in [
            (
                UNSECURED_VALIDATOR_ALLOWABLE_CLOCK_SKEW_MS,
                "-1",
                "must not be negative",
            ),
            (
                UNSECURED_VALIDATOR_ALLOWABLE_CLOCK_SKEW_MS,
                "x",
                "For input string",
            ),
            (
                UNSECURED_VALIDATOR_REQUIRED_SCOPE,
                "a \"b\"",
                "Invalid scope value: \"b\"",
            ),
        ] {
            let e = OAuthBearerSettings::from_props(props(&[]), Some(&jaas(&[(option, value)])))
                .unwrap_err();
            assert_eq!(e.key, format!("sasl.jaas.config option {option}"));
            assert!(e.message.contains(text), "{e}");
        }
    }

    // --- unsecured validation ---

    fn unsecured(options: &[(&str, &str)]) -> Arc<OAuthBearerValidator> {
        let entry = jaas(options);
        let s = OAuthBearerSettings::from_props(props(&[]), Some(&entry)).unwrap();
        Arc::new(OAuthBearerValidator::new(&s).unwrap())
    }

    fn unsecured_claims(claims: Value) -> String {
        unsecured_jws(claims.as_object().unwrap())
    }

    #[test]
    fn unsecured_tokens() {
        let v = unsecured(&[]);
        assert!(v.is_unsecured());
        let token = unsecured_token("alice", &["read", "write"], NOW_MS, 3600);
        let t = v.validate(&token, NOW_MS).unwrap();
        assert_eq!(t.principal_name, "alice");
        assert_eq!(
            t.scope,
            BTreeSet::from(["read".to_string(), "write".to_string()])
        );
        assert_eq!(t.lifetime_ms, NOW_MS + 3_600_000);
        assert_eq!(t.start_time_ms, Some(NOW_MS));
        // A string scope is one trimmed item; the principal is kept as is.
        let t = v
            .validate(
                &unsecured_claims(json!({"sub": " bob ", "exp": NOW + 60, "scope": " a b "})),
                NOW_MS,
            )
            .unwrap();
        assert_eq!(t.principal_name, " bob ");
        assert_eq!(t.scope, BTreeSet::from(["a b".to_string()]));
        // base64url with '-' and '_' decodes (KAFKA-17089).
        let t = v
            .validate(
                &unsecured_claims(json!({"sub": ">>>???<<<", "exp": NOW + 60})),
                NOW_MS,
            )
            .unwrap();
        assert_eq!(t.principal_name, ">>>???<<<");
    }

    #[test]
    fn unsecured_refusals() {
        let v = unsecured(&[]);
        let exp = NOW + 60;
        let signed = TestJwtSigner::es256("k").sign(&claims());
        let alg_hs = format!(
            "{}.{}.",
            B64URL.encode(r#"{"alg":"HS256"}"#),
            B64URL.encode(json!({"sub": "a", "exp": exp}).to_string())
        );
        for (token, text) in [
            ("a..b".to_string(), "contains '..'"),
            ("a.b".to_string(), "3 dot-separated"),
            ("!.e30.".to_string(), "malformed Base64 URL encoded value"),
            (format!("{}.e30.", B64URL.encode("[1]")), "malformed JSON"),
            (format!("{}.e30.", B64URL.encode("{}")), "Algorithm value"),
            (alg_hs, "must have 'none'"),
            (
                format!("{}sig", unsecured_claims(json!({"sub": "a", "exp": exp}))),
                "must not contain a digital signature",
            ),
            (signed, "must have 'none'"),
            (
                unsecured_claims(json!({"sub": "a"})),
                "No expiration time in JWT",
            ),
            (
                unsecured_claims(json!({"sub": "a", "exp": "soon"})),
                "The 'exp' claim was not of type Number: String",
            ),
            (
                unsecured_claims(json!({"exp": exp})),
                "No principal name in JWT claim: sub",
            ),
            (
                unsecured_claims(json!({"sub": " ", "exp": exp})),
                "No principal name in JWT claim: sub",
            ),
            (
                unsecured_claims(json!({"sub": 7, "exp": exp})),
                "The 'sub' claim was not of type String: Integer",
            ),
            (
                unsecured_claims(json!({"sub": "a", "exp": exp, "scope": 1.5})),
                "The 'scope' claim was not of type List: Double",
            ),
            (
                unsecured_claims(json!({"sub": "a", "exp": exp, "iat": "x"})),
                "The 'iat' claim was not of type Number: String",
            ),
            (
                unsecured_claims(json!({"sub": "a", "exp": NOW})),
                "was on or after the Expiration Time value",
            ),
            (
                unsecured_claims(json!({"sub": "a", "exp": exp, "iat": NOW + 1})),
                "The Issued At value",
            ),
            (
                unsecured_claims(json!({"sub": "a", "exp": NOW - 5, "iat": NOW - 5})),
                "on or after",
            ),
        ] {
            let r = reason(v.validate(&token, NOW_MS));
            assert!(r.contains(text), "{token}: {r}");
        }
        // exp <= iat, both in the past and future around the skew.
        let skewed = unsecured(&[(UNSECURED_VALIDATOR_ALLOWABLE_CLOCK_SKEW_MS, "10000")]);
        let r = reason(skewed.validate(
            &unsecured_claims(json!({"sub": "a", "exp": NOW + 5, "iat": NOW + 5})),
            NOW_MS,
        ));
        assert!(r.contains("was not after the Issued At time"), "{r}");
        assert!(skewed
            .validate(
                &unsecured_claims(json!({"sub": "a", "exp": NOW - 5})),
                NOW_MS
            )
            .is_ok());
        assert!(skewed
            .validate(
                &unsecured_claims(json!({"sub": "a", "exp": exp, "iat": NOW + 5})),
                NOW_MS
            )
            .is_ok());
    }

    #[test]
    fn unsecured_required_scope_and_claim_names() {
        let v = unsecured(&[
            (UNSECURED_VALIDATOR_REQUIRED_SCOPE, "read write"),
            (UNSECURED_VALIDATOR_PRINCIPAL_CLAIM_NAME, "client_id"),
            (UNSECURED_VALIDATOR_SCOPE_CLAIM_NAME, "scp"),
        ]);
        let ok = json!({"client_id": "svc", "exp": NOW + 60, "scp": ["write", "read", "extra"]});
        assert_eq!(
            v.validate(&unsecured_claims(ok), NOW_MS)
                .unwrap()
                .principal_name,
            "svc"
        );
        let short = json!({"client_id": "svc", "exp": NOW + 60, "scp": ["read"]});
        let e = v.validate(&unsecured_claims(short), NOW_MS).unwrap_err();
        assert_eq!(e.status, "insufficient_scope");
        assert_eq!(e.scope.as_deref(), Some("[read, write]"));
        assert_eq!(
            e.error_response(),
            r#"{"status":"insufficient_scope", "scope":"[read, write]"}"#
        );
        assert_eq!(
            e.reason,
            "The provided scope ([read]) was missing a required scope (write).  All required scope elements: [read, write]"
        );
        let sub_only = json!({"sub": "svc", "exp": NOW + 60, "scp": ["read", "write"]});
        assert!(reason(v.validate(&unsecured_claims(sub_only), NOW_MS)).contains("client_id"));
    }

    // --- the initial response ---

    #[test]
    fn initial_response_round_trip() {
        let extensions = BTreeMap::from([
            ("traceId".to_string(), "a=b c".to_string()),
            ("logicalCluster".to_string(), "lkc-1".to_string()),
        ]);
        let r = ClientInitialResponse::new("abc.def.ghi", "alice", extensions.clone()).unwrap();
        let bytes = r.to_bytes();
        assert_eq!(
            bytes,
            b"n,a=alice,\x01auth=Bearer abc.def.ghi\x01logicalCluster=lkc-1\x01traceId=a=b c\x01\x01"
        );
        assert_eq!(ClientInitialResponse::parse(&bytes).unwrap(), r);
        let plain = ClientInitialResponse::new("t0k3n==", "", BTreeMap::new()).unwrap();
        assert_eq!(plain.to_bytes(), b"n,,\x01auth=Bearer t0k3n==\x01\x01");
        let parsed = ClientInitialResponse::parse(&plain.to_bytes()).unwrap();
        assert_eq!(parsed.token(), "t0k3n==");
        assert_eq!(parsed.authorization_id(), "");
        assert!(parsed.extensions().is_empty());
        assert!(!format!("{parsed:?}").contains("t0k3n"));
    }

    #[test]
    fn initial_response_parsing_as_kafka() {
        // Case-insensitive scheme, several spaces, authzid kept as sent, last duplicate wins.
        let r =
            ClientInitialResponse::parse(b"n,a=a=2Cb,\x01auth=bEaReR   tok\x01k=1\x01k=2\x01\x01")
                .unwrap();
        assert_eq!(r.token(), "tok");
        assert_eq!(r.authorization_id(), "a=2Cb");
        assert_eq!(
            r.extensions(),
            &BTreeMap::from([("k".to_string(), "2".to_string())])
        );
        use OAuthBearerError::*;
        for (message, error) in [
            (&b""[..], InvalidClientFirstMessage),
            (b"y,,\x01auth=Bearer t\x01\x01", InvalidClientFirstMessage),
            (b"n,,\x01auth=Bearer t\x01", InvalidClientFirstMessage),
            (b"n,,auth=Bearer t\x01\x01", InvalidClientFirstMessage),
            (b"n,a=,\x01auth=Bearer t\x01\x01", InvalidClientFirstMessage),
            (
                b"n,a=x=41,\x01auth=Bearer t\x01\x01",
                InvalidClientFirstMessage,
            ),
            (
                b"n,,\x01auth=Bearer t\x01k1=v\x01\x01",
                InvalidClientFirstMessage,
            ),
            (
                b"n,,\x01auth=Bearer t\x01k=\x01\x01",
                InvalidClientFirstMessage,
            ),
            (
                b"n,,\x01auth=Bearer t\x01k=\xc3\xa9\x01\x01",
                InvalidClientFirstMessage,
            ),
            (b"n,,\x01\x01", AuthNotSpecified),
            (b"n,,\x01k=v\x01\x01", AuthNotSpecified),
            (b"n,,\x01auth=Bearer\x01\x01", InvalidAuthFormat),
            (b"n,,\x01auth=Bearer a b\x01\x01", InvalidAuthFormat),
            (b"n,,\x01auth=Bearer t=x\x01\x01", InvalidAuthFormat),
            (
                b"n,,\x01auth=Basic dXNlcg==\x01\x01",
                InvalidScheme("Basic".to_string()),
            ),
        ] {
            assert_eq!(
                ClientInitialResponse::parse(message),
                Err(error),
                "{message:?}"
            );
        }
    }

    #[test]
    fn extensions_are_validated_when_building() {
        let build = |k: &str, v: &str| {
            ClientInitialResponse::new("t", "", BTreeMap::from([(k.to_string(), v.to_string())]))
        };
        assert_eq!(
            build("auth", "x"),
            Err(OAuthBearerError::InvalidExtensionName("auth".into()))
        );
        assert_eq!(
            build("a1", "x"),
            Err(OAuthBearerError::InvalidExtensionName("a1".into()))
        );
        assert_eq!(
            build("", "x"),
            Err(OAuthBearerError::InvalidExtensionName("".into()))
        );
        assert_eq!(
            build("a", "x\x01y"),
            Err(OAuthBearerError::InvalidExtensionValue {
                name: "a".into(),
                value: "x\x01y".into()
            })
        );
        assert_eq!(
            build("a", ""),
            Err(OAuthBearerError::InvalidExtensionValue {
                name: "a".into(),
                value: "".into()
            })
        );
        assert!(build("a", " \t\r\n~!").is_ok());
        assert_eq!(
            ClientInitialResponse::new("t", "a,b", BTreeMap::new()),
            Err(OAuthBearerError::InvalidAuthorizationId("a,b".into()))
        );
        assert_eq!(
            ClientInitialResponse::new("a b", "", BTreeMap::new()),
            Err(OAuthBearerError::InvalidTokenValue)
        );
    }

    // --- the server exchange ---

    fn initial(token: &str, authzid: &str, extensions: &[(&str, &str)]) -> Vec<u8> {
        let extensions = extensions
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ClientInitialResponse::new(token, authzid, extensions)
            .unwrap()
            .to_bytes()
    }

    #[test]
    fn server_success() {
        let signer = TestJwtSigner::es256("k1");
        let (v, _) = secured(&[&signer], &[]);
        let mut server = OAuthBearerServer::new(v);
        let token = signer.sign(&with(claims(), "exp", json!(NOW + 600)));
        let challenge = server
            .evaluate_response_at(&initial(&token, "alice", &[("traceId", "t-1")]), NOW_MS)
            .unwrap();
        assert!(challenge.is_empty());
        assert!(server.is_complete());
        assert_eq!(server.principal_name(), Some("alice"));
        assert_eq!(server.credential_expiration_ms(), Some((NOW + 600) * 1000));
        assert_eq!(
            server.extensions().get("traceId").map(String::as_str),
            Some("t-1")
        );
        assert_eq!(
            server.token().unwrap().scope,
            BTreeSet::from(["read".to_string()])
        );
        // KIP-368: min(token lifetime left, connections.max.reauth.ms); unbounded when 0.
        assert_eq!(server.session_lifetime_ms(NOW_MS, 0), Some(600_000));
        assert_eq!(server.session_lifetime_ms(NOW_MS, 60_000), Some(60_000));
        assert_eq!(
            server.session_lifetime_ms(NOW_MS + 700_000, 60_000),
            Some(0)
        );
        // Nothing more is expected.
        let e = server.evaluate_response_at(b"\x01", NOW_MS).unwrap_err();
        assert!(e.is_illegal_state());
    }

    #[test]
    fn server_two_step_failure() {
        let v = unsecured(&[(UNSECURED_VALIDATOR_REQUIRED_SCOPE, "admin")]);
        let mut server = OAuthBearerServer::new(v);
        let token = unsecured_token("alice", &["read"], NOW_MS, 60);
        let challenge = server
            .evaluate_response_at(&initial(&token, "", &[]), NOW_MS)
            .unwrap();
        assert_eq!(
            challenge,
            br#"{"status":"insufficient_scope", "scope":"[admin]"}"#
        );
        assert_eq!(
            server.state(),
            OAuthBearerServerState::ReceiveClientErrorAck
        );
        assert!(server
            .failure_reason()
            .unwrap()
            .contains("missing a required scope (admin)"));
        let e = server.evaluate_response_at(&[KVSEP], NOW_MS).unwrap_err();
        assert_eq!(
            e,
            OAuthBearerError::TokenRejected {
                error_response: r#"{"status":"insufficient_scope", "scope":"[admin]"}"#.to_string()
            }
        );
        assert_eq!(
            e.error_message(false),
            r#"{"status":"insufficient_scope", "scope":"[admin]"}"#
        );
        assert_eq!(server.state(), OAuthBearerServerState::Failed);
        assert!(!server.is_complete());
        assert!(server
            .evaluate_response_at(&[KVSEP], NOW_MS)
            .unwrap_err()
            .is_illegal_state());
    }

    #[test]
    fn server_with_the_client_state_machine() {
        let v = unsecured(&[]);
        // A refused token: the client answers the error with %x01.
        let mut server = OAuthBearerServer::new(v.clone());
        let expired = unsecured_token("alice", &[], NOW_MS - 120_000, 60);
        let mut client = OAuthBearerClient::new(
            ClientInitialResponse::new(&expired, "", BTreeMap::new()).unwrap(),
        );
        let first = client.evaluate_challenge(b"").unwrap().unwrap();
        let challenge = server.evaluate_response_at(&first, NOW_MS).unwrap();
        assert_eq!(challenge, br#"{"status":"invalid_token"}"#);
        let ack = client.evaluate_challenge(&challenge).unwrap().unwrap();
        assert_eq!(ack, [KVSEP]);
        assert_eq!(client.server_error(), Some(r#"{"status":"invalid_token"}"#));
        assert_eq!(
            client.state(),
            OAuthBearerClientState::ReceiveServerMessageAfterFailure
        );
        assert!(matches!(
            server.evaluate_response_at(&ack, NOW_MS),
            Err(OAuthBearerError::TokenRejected { .. })
        ));
        assert!(client
            .evaluate_challenge(b"x")
            .unwrap_err()
            .is_illegal_state());
        // A good one.
        let mut server = OAuthBearerServer::new(v);
        let token = unsecured_token("alice", &[], NOW_MS, 60);
        let mut client = OAuthBearerClient::new(
            ClientInitialResponse::new(&token, "", BTreeMap::new()).unwrap(),
        );
        assert_eq!(
            client.evaluate_challenge(b"x"),
            Err(OAuthBearerError::ExpectedEmptyChallenge)
        );
        let mut client = OAuthBearerClient::new(
            ClientInitialResponse::new(&token, "", BTreeMap::new()).unwrap(),
        );
        let first = client.evaluate_challenge(b"").unwrap().unwrap();
        let last = server.evaluate_response_at(&first, NOW_MS).unwrap();
        assert_eq!(client.evaluate_challenge(&last).unwrap(), None);
        assert!(client.is_complete() && server.is_complete());
    }

    #[test]
    fn after_an_error_a_new_initial_response_is_accepted() {
        // Kafka clears the error and parses anything but %x01 as a new initial response.
        let v = unsecured(&[]);
        let mut server = OAuthBearerServer::new(v);
        let bad = initial(
            &unsecured_token("alice", &[], NOW_MS - 120_000, 60),
            "",
            &[],
        );
        assert!(!server
            .evaluate_response_at(&bad, NOW_MS)
            .unwrap()
            .is_empty());
        let good = initial(&unsecured_token("alice", &[], NOW_MS, 60), "", &[]);
        assert!(server
            .evaluate_response_at(&good, NOW_MS)
            .unwrap()
            .is_empty());
        assert!(server.is_complete());
    }

    #[test]
    fn server_authorization_id_must_be_the_principal() {
        let v = unsecured(&[]);
        let token = unsecured_token("alice", &[], NOW_MS, 60);
        let mut server = OAuthBearerServer::new(v.clone());
        let e = server
            .evaluate_response_at(&initial(&token, "bob", &[]), NOW_MS)
            .unwrap_err();
        assert_eq!(
            e.error_message(false),
            "Authentication failed: Client requested an authorization id (bob) that is different from the token's principal name (alice)"
        );
        assert_eq!(server.state(), OAuthBearerServerState::Failed);
        assert_eq!(server.principal_name(), None);
        let mut server = OAuthBearerServer::new(v);
        assert!(server
            .evaluate_response_at(&initial(&token, "alice", &[]), NOW_MS)
            .is_ok());
        assert_eq!(server.principal_name(), Some("alice"));
    }

    #[test]
    fn server_malformed_initial_response() {
        let mut server = OAuthBearerServer::new(unsecured(&[]));
        let e = server
            .evaluate_response_at(b"n,,\x01auth=Basic x\x01\x01", NOW_MS)
            .unwrap_err();
        assert_eq!(e, OAuthBearerError::InvalidScheme("Basic".into()));
        assert_eq!(
            e.error_message(false),
            "Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER"
        );
        assert_eq!(
            e.error_message(true),
            "Authentication failed during re-authentication due to invalid credentials with SASL mechanism OAUTHBEARER"
        );
        assert!(!e.is_illegal_state());
        assert_eq!(server.state(), OAuthBearerServerState::Failed);
        // %x01 with no error pending is a malformed initial response.
        let mut server = OAuthBearerServer::new(unsecured(&[]));
        assert_eq!(
            server.evaluate_response_at(&[KVSEP], NOW_MS),
            Err(OAuthBearerError::InvalidClientFirstMessage)
        );
    }

    fn arbitrary_message() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64),
            // Mostly well-formed: the grammar's pieces in any order and number.
            proptest::collection::vec(
                prop_oneof![
                    Just(b"n,".to_vec()),
                    Just(b"a=".to_vec()),
                    Just(b",".to_vec()),
                    Just(b"\x01".to_vec()),
                    Just(b"auth=Bearer ".to_vec()),
                    Just(b"=2C".to_vec()),
                    Just(b"k=v".to_vec()),
                    Just(b"e30.e30.".to_vec()),
                    proptest::collection::vec(any::<u8>(), 0..4),
                ],
                0..12
            )
            .prop_map(|parts| parts.concat()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn arbitrary_bytes_never_panic(message in arbitrary_message()) {
            let _ = ClientInitialResponse::parse(&message);
            let mut server = OAuthBearerServer::new(unsecured(&[]));
            let _ = server.evaluate_response_at(&message, NOW_MS);
            let _ = server.evaluate_response_at(&message, NOW_MS);
        }

        #[test]
        fn arbitrary_tokens_never_panic(token in "[-_~+/.a-zA-Z0-9=]{0,80}") {
            static SECURED: OnceLock<Arc<OAuthBearerValidator>> = OnceLock::new();
            let v = SECURED
                .get_or_init(|| secured(&[&TestJwtSigner::es256("k1")], &[]).0)
                .clone();
            let _ = unsecured(&[]).validate(&token, NOW_MS);
            let _ = v.validate(&token, NOW_MS);
            let mut server = OAuthBearerServer::new(v);
            if let Ok(bytes) = ClientInitialResponse::new(&token, "", BTreeMap::new()).map(|r| r.to_bytes()) {
                let _ = server.evaluate_response_at(&bytes, NOW_MS);
            }
        }

        #[test]
        fn built_responses_parse_back(
            token in "[-_~+/.a-zA-Z0-9]{1,40}={0,2}",
            authzid in "([a-z@.]|=2C|=3D){0,12}",
            extensions in proptest::collection::btree_map("[a-zA-Z]{1,8}", "[\\x21-\\x7E \t\r\n]{1,12}", 0..4),
        ) {
            prop_assume!(!extensions.contains_key(AUTH_KEY));
            let r = ClientInitialResponse::new(&token, &authzid, extensions).unwrap();
            prop_assert_eq!(ClientInitialResponse::parse(&r.to_bytes()).unwrap(), r);
        }
    }
}
