//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka's `ScramSaslServer`,
//! `ScramSaslClient`, `ScramFormatter` and `ScramMessages` do them, and [`SaslError`], the
//! error of every SASL exchange in this crate (PLAIN's too).
//!
//! Messages are checked against the grammar Kafka's `ScramMessages` regular expressions
//! accept (ASCII only; user names as `saslname`, `=2C` for `,` and `=3D` for `=`).
//! As Kafka's server, this one refuses an unknown user at client-first (no fake
//! challenge); the client sees the same generic message as for a wrong password.

use std::collections::BTreeMap;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// Kafka's SCRAM mechanisms, with the type codes that `AlterUserScramCredentials`,
/// `DescribeUserScramCredentials` and the `UserScramCredentialRecord` carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    /// Kafka's wire code for a mechanism it does not know (`ScramMechanism.UNKNOWN`).
    pub const UNKNOWN_TYPE_CODE: i8 = 0;
    /// Fewest iterations a credential may have (Kafka's `minIterations`, also what its
    /// client accepts from a server-first message).
    pub const MIN_ITERATIONS: i32 = 4096;
    /// Most iterations `AlterUserScramCredentials` accepts (Kafka's `maxIterations`).
    pub const MAX_ITERATIONS: i32 = 16384;

    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The SASL mechanism name, as in `sasl.enabled.mechanisms`.
    pub fn mechanism_name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism of a SASL mechanism name (case-sensitive, as Kafka's map lookup).
    pub fn from_mechanism_name(name: &str) -> Option<ScramMechanism> {
        ScramMechanism::ALL
            .into_iter()
            .find(|m| m.mechanism_name() == name)
    }

    /// Kafka's type code: SCRAM-SHA-256 = 1, SCRAM-SHA-512 = 2 (0 is UNKNOWN).
    pub fn type_code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    /// The mechanism of a type code; `None` for UNKNOWN (0) and any other value.
    pub fn from_type_code(code: i8) -> Option<ScramMechanism> {
        ScramMechanism::ALL
            .into_iter()
            .find(|m| m.type_code() == code)
    }

    pub fn min_iterations(self) -> i32 {
        Self::MIN_ITERATIONS
    }

    pub fn max_iterations(self) -> i32 {
        Self::MAX_ITERATIONS
    }

    fn hmac(self, key: &[u8], data: &[&[u8]]) -> Vec<u8> {
        // HMAC takes keys of any length, so `new_from_slice` cannot fail here.
        match self {
            ScramMechanism::Sha256 => {
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
                    .expect("HMAC accepts keys of any length");
                data.iter().for_each(|d| mac.update(d));
                mac.finalize().into_bytes().to_vec()
            }
            ScramMechanism::Sha512 => {
                let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(key)
                    .expect("HMAC accepts keys of any length");
                data.iter().for_each(|d| mac.update(d));
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn output_len(self) -> usize {
        match self {
            ScramMechanism::Sha256 => 32,
            ScramMechanism::Sha512 => 64,
        }
    }

    /// RFC 5802's `Hi(str, salt, i)` (PBKDF2 with this mechanism's HMAC, one block).
    fn hi(self, password: &[u8], salt: &[u8], iterations: i32) -> Vec<u8> {
        // Kafka's loop runs `2..=iterations`, so zero or negative counts act as one
        // round; PBKDF2 with 0 rounds does the same.
        let rounds = u32::try_from(iterations).unwrap_or(0);
        let mut out = vec![0u8; self.output_len()];
        match self {
            ScramMechanism::Sha256 => {
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, rounds, &mut out)
            }
            ScramMechanism::Sha512 => {
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, rounds, &mut out)
            }
        }
        out
    }

    fn client_key(self, salted_password: &[u8]) -> Vec<u8> {
        self.hmac(salted_password, &[b"Client Key"])
    }

    fn server_key(self, salted_password: &[u8]) -> Vec<u8> {
        self.hmac(salted_password, &[b"Server Key"])
    }
}

impl std::fmt::Display for ScramMechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.mechanism_name())
    }
}

/// What a broker keeps of a user's SCRAM password (Kafka's `ScramCredential`).
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

impl std::fmt::Debug for ScramCredential {
    // Keys are password equivalents for SCRAM: keep them out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("salt", &"[hidden]")
            .field("stored_key", &"[hidden]")
            .field("server_key", &"[hidden]")
            .field("iterations", &self.iterations)
            .finish()
    }
}

impl ScramCredential {
    /// The credential of a salted password: what the controller stores for an
    /// `AlterUserScramCredentials` upsertion, whose request carries the salted password.
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salted_password: &[u8],
        salt: &[u8],
        iterations: i32,
    ) -> ScramCredential {
        let client_key = mechanism.client_key(salted_password);
        ScramCredential {
            salt: salt.to_vec(),
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.server_key(salted_password),
            iterations,
        }
    }

    /// The credential of a clear password (what `storage format --add-scram` does with
    /// `password=`): `Hi(password, salt, iterations)`, then as `from_salted_password`.
    pub fn from_password(
        mechanism: ScramMechanism,
        password: &str,
        salt: &[u8],
        iterations: i32,
    ) -> ScramCredential {
        let salted = salted_password(mechanism, password, salt, iterations);
        ScramCredential::from_salted_password(mechanism, &salted, salt, iterations)
    }
}

/// RFC 5802's `SaltedPassword := Hi(Normalize(password), salt, i)`. Kafka's `Normalize`
/// is plain UTF-8 (no SASLprep), and so is this.
pub fn salted_password(
    mechanism: ScramMechanism,
    password: &str,
    salt: &[u8],
    iterations: i32,
) -> Vec<u8> {
    mechanism.hi(password.as_bytes(), salt, iterations)
}

/// A new random salt as Kafka makes one (`ScramFormatter.secureRandomBytes`): the UTF-8
/// bytes of a random 130-bit number written in base 36 (at most 26 bytes).
///
/// # Panics
/// If the OS gives no randomness (as nonces, never on any input).
pub fn random_salt() -> Vec<u8> {
    secure_random_string().into_bytes()
}

/// Kafka's `secureRandomString`: `new BigInteger(130, random).toString(36)`. Used for
/// salts and for both sides' nonces.
fn secure_random_string() -> String {
    let mut bytes = [0u8; 17];
    fill_random(&mut bytes);
    // 17 bytes are 136 bits: keep 130.
    bytes[0] &= 0x03;
    base36(bytes)
}

fn fill_random(buf: &mut [u8]) {
    if let Err(e) = getrandom::fill(buf) {
        // The OS refusing randomness leaves no safe way to make a nonce or a salt.
        panic!("the OS random number generator failed: {e}");
    }
}

/// A big-endian unsigned number in base 36 with lowercase digits, as Java's
/// `BigInteger.toString(36)` (no leading zeros; "0" for zero).
fn base36(mut n: [u8; 17]) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    while n.iter().any(|&b| b != 0) {
        let mut rem: u32 = 0;
        for b in n.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 36) as u8;
            rem = cur % 36;
        }
        out.push(DIGITS[rem as usize]);
    }
    if out.is_empty() {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8(out).expect("base-36 digits are ASCII")
}

/// Java's basic Base64 decoder ignores the unused low bits of the last character; the
/// grammar check before decoding already demands standard padding.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// The gs2 header Kafka's client sends (no channel binding, no authzid), and its base64
/// form, the `c=` of client-final.
const CLIENT_GS2_HEADER: &str = "n,,";
const CLIENT_CHANNEL_BINDING: &str = "biws";

/// Kafka's `ScramLoginModule.TOKEN_AUTH_CONFIG`: the extension naming a delegation token.
pub const TOKEN_AUTH_EXTENSION: &str = "tokenauth";

/// The error of a SASL exchange (PLAIN or SCRAM, server or client side).
///
/// On the server, `Display` is what Kafka's broker puts in SaslAuthenticate's
/// `error_message` (with SASL_AUTHENTICATION_FAILED): Kafka sends the text of a
/// `SaslAuthenticationException` as is, and for any other `SaslException` a generic text
/// that says nothing of the user ([`SaslError::InvalidCredentials`], whose [`reason`]
/// is Kafka's internal message, for the broker's log).
///
/// [`reason`]: SaslError::reason
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    /// A PLAIN token that is not `[authzid] NUL authcid NUL passwd`.
    #[error("Invalid SASL/PLAIN response: expected 3 tokens, got {tokens}")]
    InvalidPlainResponse { tokens: usize },
    #[error("Authentication failed: username not specified")]
    UsernameNotSpecified,
    #[error("Authentication failed: password not specified")]
    PasswordNotSpecified,
    /// PLAIN: an unknown user or a wrong password (indistinguishable on purpose).
    #[error("Authentication failed: Invalid username or password")]
    InvalidUsernameOrPassword,
    /// PLAIN or SCRAM: an authzid that is neither empty nor the user name.
    #[error(
        "Authentication failed: Client requested an authorization id that is different from username"
    )]
    AuthorizationIdMismatch,
    /// SCRAM server: any other failure. Kafka tells the client only this.
    #[error("Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}")]
    InvalidCredentials {
        mechanism: ScramMechanism,
        #[source]
        reason: ScramFailure,
    },
    /// SCRAM server: a message in the wrong state (Kafka's `IllegalSaslStateException`,
    /// after which Kafka closes the connection without a SaslAuthenticate response).
    #[error("Unexpected challenge in Sasl server state {state}")]
    UnexpectedServerMessage { state: ScramServerState },
    /// SCRAM client: a message in the wrong state.
    #[error("Unexpected challenge in Sasl client state {state}")]
    UnexpectedClientMessage { state: ScramClientState },
    /// SCRAM client: the server's messages were refused (Kafka's client-side messages).
    #[error(transparent)]
    ScramClient(ScramFailure),
}

impl SaslError {
    /// The `error_message` for SaslAuthenticate, as Kafka words it during a
    /// re-authentication (KIP-368) or a first authentication.
    pub fn error_message(&self, reauthentication: bool) -> String {
        match self {
            SaslError::InvalidCredentials { mechanism, .. } if reauthentication => format!(
                "Authentication failed during re-authentication due to invalid credentials with SASL mechanism {mechanism}"
            ),
            other => other.to_string(),
        }
    }

    /// The detailed cause of a SCRAM failure, for logs (never for the client).
    pub fn reason(&self) -> Option<&ScramFailure> {
        match self {
            SaslError::InvalidCredentials { reason, .. } | SaslError::ScramClient(reason) => {
                Some(reason)
            }
            _ => None,
        }
    }

    /// A message in the wrong state: Kafka answers none and closes the connection.
    pub fn is_illegal_state(&self) -> bool {
        matches!(
            self,
            SaslError::UnexpectedServerMessage { .. } | SaslError::UnexpectedClientMessage { .. }
        )
    }
}

/// Why a SCRAM exchange failed, in Kafka's words (its `SaslException` messages). Message
/// texts quoted from the peer are decoded lossily from UTF-8.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScramFailure {
    // Server side.
    #[error("Invalid SCRAM client first message format: {0}")]
    InvalidClientFirstMessage(String),
    /// A gs2 header with `p=`: this broker, as Kafka, has no channel binding.
    #[error("Invalid SCRAM client first message format: channel binding is not supported: {0}")]
    ChannelBindingNotSupported(String),
    /// A `saslname` with `=` not starting `=2C` or `=3D`.
    #[error("Invalid username: {0}")]
    InvalidUsername(String),
    /// `tokenauth=true`: delegation tokens do not exist on this broker.
    #[error("Token Authentication failed: delegation tokens are not supported (tokenauth extension for {0})")]
    TokenAuthNotSupported(String),
    /// The user has no credential for this mechanism.
    #[error("Authentication failed: Invalid user credentials")]
    InvalidUserCredentials,
    #[error("Iterations {iterations} is less than the minimum {minimum} for {mechanism}")]
    CredentialIterationsTooFew {
        iterations: i32,
        minimum: i32,
        mechanism: ScramMechanism,
    },
    #[error("Invalid SCRAM client final message format: {0}")]
    InvalidClientFinalMessage(String),
    #[error("Invalid client nonce in the final client message.")]
    InvalidClientNonce,
    /// A wrong password (the proof does not match the stored key).
    #[error("Invalid client credentials")]
    InvalidClientProof,

    // Client side.
    #[error("Invalid SCRAM server first message format: {0}")]
    InvalidServerFirstMessage(String),
    #[error("Invalid SCRAM server first message format: invalid iterations {0}")]
    InvalidServerIterations(String),
    #[error("Invalid server nonce: does not start with client nonce")]
    InvalidServerNonce,
    #[error(
        "Requested iterations {iterations} is less than the minimum {minimum} for {mechanism}"
    )]
    RequestedIterationsTooFew {
        iterations: i32,
        minimum: i32,
        mechanism: ScramMechanism,
    },
    #[error("Invalid SCRAM server final message format: {0}")]
    InvalidServerFinalMessage(String),
    #[error("Sasl authentication using {mechanism} failed with error: {error}")]
    ServerError {
        mechanism: ScramMechanism,
        error: String,
    },
    #[error("Invalid server signature in server final message")]
    InvalidServerSignature,
}

/// Kafka's `ScramSaslServer.State`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScramServerState {
    ReceiveClientFirstMessage,
    ReceiveClientFinalMessage,
    Complete,
    Failed,
}

impl std::fmt::Display for ScramServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ScramServerState::ReceiveClientFirstMessage => "RECEIVE_CLIENT_FIRST_MESSAGE",
            ScramServerState::ReceiveClientFinalMessage => "RECEIVE_CLIENT_FINAL_MESSAGE",
            ScramServerState::Complete => "COMPLETE",
            ScramServerState::Failed => "FAILED",
        })
    }
}

/// Kafka's `ScramSaslClient.State`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScramClientState {
    SendClientFirstMessage,
    ReceiveServerFirstMessage,
    ReceiveServerFinalMessage,
    Complete,
    Failed,
}

impl std::fmt::Display for ScramClientState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ScramClientState::SendClientFirstMessage => "SEND_CLIENT_FIRST_MESSAGE",
            ScramClientState::ReceiveServerFirstMessage => "RECEIVE_SERVER_FIRST_MESSAGE",
            ScramClientState::ReceiveServerFinalMessage => "RECEIVE_SERVER_FINAL_MESSAGE",
            ScramClientState::Complete => "COMPLETE",
            ScramClientState::Failed => "FAILED",
        })
    }
}

/// The server side of one SCRAM exchange (Kafka's `ScramSaslServer`): client-first →
/// server-first, client-final → server-final.
pub struct ScramServer {
    mechanism: ScramMechanism,
    state: ScramServerState,
    /// Set by tests to replay a known exchange; `None` draws a fresh nonce.
    fixed_server_nonce: Option<String>,
    exchange: Option<ServerExchange>,
    extensions: BTreeMap<String, String>,
    authorization_id: Option<String>,
}

impl std::fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramServer")
            .field("mechanism", &self.mechanism)
            .field("state", &self.state)
            .field("authorization_id", &self.authorization_id)
            .finish_non_exhaustive()
    }
}

/// What the server keeps between its two messages.
struct ServerExchange {
    username: String,
    credential: ScramCredential,
    client_first_bare: String,
    server_first: String,
    /// client nonce + server nonce.
    nonce: String,
}

impl ScramServer {
    pub fn new(mechanism: ScramMechanism) -> ScramServer {
        ScramServer {
            mechanism,
            state: ScramServerState::ReceiveClientFirstMessage,
            fixed_server_nonce: None,
            exchange: None,
            extensions: BTreeMap::new(),
            authorization_id: None,
        }
    }

    #[cfg(test)]
    fn with_server_nonce(mechanism: ScramMechanism, server_nonce: &str) -> ScramServer {
        ScramServer {
            fixed_server_nonce: Some(server_nonce.to_string()),
            ..ScramServer::new(mechanism)
        }
    }

    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    pub fn state(&self) -> ScramServerState {
        self.state
    }

    pub fn is_complete(&self) -> bool {
        self.state == ScramServerState::Complete
    }

    /// The authenticated user, once the exchange is complete.
    pub fn authorization_id(&self) -> Option<&str> {
        self.authorization_id.as_deref()
    }

    /// The client-first message's extensions; Kafka ignores the ones it does not know.
    pub fn extensions(&self) -> &BTreeMap<String, String> {
        &self.extensions
    }

    /// Handles client-first and returns server-first. `credential_for` looks up the
    /// (decoded) user name's credential for this mechanism.
    pub fn handle_client_first(
        &mut self,
        message: &[u8],
        credential_for: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<Vec<u8>, SaslError> {
        if self.state != ScramServerState::ReceiveClientFirstMessage {
            return Err(self.fail_state());
        }
        let result = self.client_first(message, credential_for);
        if result.is_err() {
            self.fail();
        }
        result
    }

    fn client_first(
        &mut self,
        message: &[u8],
        credential_for: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<Vec<u8>, SaslError> {
        let invalid = |reason| SaslError::InvalidCredentials {
            mechanism: self.mechanism,
            reason,
        };
        let first = ClientFirstMessage::parse(message).map_err(invalid)?;
        self.extensions = first.extensions.clone();
        if self
            .extensions
            .keys()
            .any(|k| k.as_str() != TOKEN_AUTH_EXTENSION)
        {
            tracing::debug!(
                extensions = ?self.extensions.keys().collect::<Vec<_>>(),
                "SCRAM: unsupported extensions are ignored"
            );
        }
        if first.token_authenticated() {
            return Err(invalid(ScramFailure::TokenAuthNotSupported(
                first.username.clone(),
            )));
        }
        let credential =
            credential_for(&first.username).ok_or(invalid(ScramFailure::InvalidUserCredentials))?;
        // As Kafka: the authzid is compared as sent (still `saslname`-encoded).
        if first.authzid.as_ref().is_some_and(|a| *a != first.username) {
            return Err(SaslError::AuthorizationIdMismatch);
        }
        let minimum = self.mechanism.min_iterations();
        if credential.iterations < minimum {
            return Err(invalid(ScramFailure::CredentialIterationsTooFew {
                iterations: credential.iterations,
                minimum,
                mechanism: self.mechanism,
            }));
        }
        let server_nonce = match &self.fixed_server_nonce {
            Some(nonce) => nonce.clone(),
            None => secure_random_string(),
        };
        let nonce = format!("{}{server_nonce}", first.nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&credential.salt),
            credential.iterations
        );
        self.exchange = Some(ServerExchange {
            username: first.username,
            credential,
            client_first_bare: first.bare,
            server_first: server_first.clone(),
            nonce,
        });
        self.state = ScramServerState::ReceiveClientFinalMessage;
        Ok(server_first.into_bytes())
    }

    /// Handles client-final: verifies the client's proof and returns server-final with the
    /// authenticated user name.
    pub fn handle_client_final(&mut self, message: &[u8]) -> Result<(Vec<u8>, String), SaslError> {
        let exchange = match (self.state, self.exchange.take()) {
            (ScramServerState::ReceiveClientFinalMessage, Some(exchange)) => exchange,
            _ => return Err(self.fail_state()),
        };
        match self.client_final(message, &exchange) {
            Ok(server_final) => {
                self.state = ScramServerState::Complete;
                self.authorization_id = Some(exchange.username.clone());
                Ok((server_final, exchange.username))
            }
            Err(reason) => {
                self.fail();
                Err(SaslError::InvalidCredentials {
                    mechanism: self.mechanism,
                    reason,
                })
            }
        }
    }

    fn client_final(
        &self,
        message: &[u8],
        exchange: &ServerExchange,
    ) -> Result<Vec<u8>, ScramFailure> {
        let last = ClientFinalMessage::parse(message)?;
        // Kafka's check (`endsWith`); the proof covers the nonce as sent either way.
        if !last.nonce.ends_with(&exchange.nonce) {
            return Err(ScramFailure::InvalidClientNonce);
        }
        let mechanism = self.mechanism;
        let auth_message = auth_message(
            &exchange.client_first_bare,
            &exchange.server_first,
            last.without_proof,
        );
        let client_signature = mechanism.hmac(&exchange.credential.stored_key, &[&auth_message]);
        if last.proof.len() != client_signature.len() {
            return Err(ScramFailure::InvalidClientProof);
        }
        let client_key = xor(&client_signature, &last.proof);
        let computed_stored_key = mechanism.hash(&client_key);
        if !bool::from(computed_stored_key.ct_eq(&exchange.credential.stored_key)) {
            return Err(ScramFailure::InvalidClientProof);
        }
        let server_signature = mechanism.hmac(&exchange.credential.server_key, &[&auth_message]);
        Ok(format!("v={}", BASE64.encode(server_signature)).into_bytes())
    }

    fn fail(&mut self) {
        self.state = ScramServerState::Failed;
        self.exchange = None;
    }

    fn fail_state(&mut self) -> SaslError {
        let state = self.state;
        self.fail();
        SaslError::UnexpectedServerMessage { state }
    }
}

/// The client side of one SCRAM exchange (Kafka's `ScramSaslClient`), for inter-broker
/// connections and the CLI.
pub struct ScramClient {
    mechanism: ScramMechanism,
    password: String,
    client_nonce: String,
    client_first_bare: String,
    state: ScramClientState,
    /// After server-first: the salted password and the auth message, to check server-final.
    verifier: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClient")
            .field("mechanism", &self.mechanism)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    pub fn new(mechanism: ScramMechanism, username: &str, password: &str) -> ScramClient {
        ScramClient::with_client_nonce(mechanism, username, password, secure_random_string())
    }

    fn with_client_nonce(
        mechanism: ScramMechanism,
        username: &str,
        password: &str,
        client_nonce: String,
    ) -> ScramClient {
        ScramClient {
            mechanism,
            password: password.to_string(),
            client_first_bare: format!("n={},r={client_nonce}", encode_saslname(username)),
            client_nonce,
            state: ScramClientState::SendClientFirstMessage,
            verifier: None,
        }
    }

    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    pub fn state(&self) -> ScramClientState {
        self.state
    }

    pub fn is_complete(&self) -> bool {
        self.state == ScramClientState::Complete
    }

    /// The client-first message, `n,,n=<saslname>,r=<nonce>` (no authzid, no extensions,
    /// as Kafka's client). Asking again returns the same message.
    pub fn client_first(&mut self) -> Vec<u8> {
        if self.state == ScramClientState::SendClientFirstMessage {
            self.state = ScramClientState::ReceiveServerFirstMessage;
        }
        format!("{CLIENT_GS2_HEADER}{}", self.client_first_bare).into_bytes()
    }

    /// Handles server-first and returns client-final. As Kafka's client, it refuses fewer
    /// iterations than the mechanism's minimum but sets no maximum: the work is the
    /// server's choice (up to `i32::MAX` rounds of HMAC).
    pub fn handle_server_first(&mut self, message: &[u8]) -> Result<Vec<u8>, SaslError> {
        if self.state != ScramClientState::ReceiveServerFirstMessage {
            return Err(self.fail_state());
        }
        match self.server_first(message) {
            Ok(client_final) => {
                self.state = ScramClientState::ReceiveServerFinalMessage;
                Ok(client_final)
            }
            Err(reason) => {
                self.state = ScramClientState::Failed;
                Err(SaslError::ScramClient(reason))
            }
        }
    }

    fn server_first(&mut self, message: &[u8]) -> Result<Vec<u8>, ScramFailure> {
        let first = ServerFirstMessage::parse(message)?;
        if !first.nonce.starts_with(&self.client_nonce) {
            return Err(ScramFailure::InvalidServerNonce);
        }
        let minimum = self.mechanism.min_iterations();
        if first.iterations < minimum {
            return Err(ScramFailure::RequestedIterationsTooFew {
                iterations: first.iterations,
                minimum,
                mechanism: self.mechanism,
            });
        }
        let mechanism = self.mechanism;
        let salted = salted_password(mechanism, &self.password, &first.salt, first.iterations);
        let without_proof = format!("c={CLIENT_CHANNEL_BINDING},r={}", first.nonce);
        let auth_message = auth_message(&self.client_first_bare, first.message, &without_proof);
        let client_key = mechanism.client_key(&salted);
        let stored_key = mechanism.hash(&client_key);
        let client_signature = mechanism.hmac(&stored_key, &[&auth_message]);
        let proof = xor(&client_key, &client_signature);
        self.verifier = Some((salted, auth_message));
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes())
    }

    /// Handles server-final: checks the server's signature (the server knew the password).
    pub fn handle_server_final(&mut self, message: &[u8]) -> Result<(), SaslError> {
        let verifier = match (self.state, self.verifier.take()) {
            (ScramClientState::ReceiveServerFinalMessage, Some(verifier)) => verifier,
            _ => return Err(self.fail_state()),
        };
        let result = ServerFinalMessage::parse(message).and_then(|last| match last {
            ServerFinalMessage::Error(error) => Err(ScramFailure::ServerError {
                mechanism: self.mechanism,
                error,
            }),
            ServerFinalMessage::Signature(signature) => {
                let (salted, auth_message) = &verifier;
                let server_key = self.mechanism.server_key(salted);
                let expected = self.mechanism.hmac(&server_key, &[auth_message]);
                if bool::from(expected.ct_eq(&signature)) {
                    Ok(())
                } else {
                    Err(ScramFailure::InvalidServerSignature)
                }
            }
        });
        match result {
            Ok(()) => {
                self.state = ScramClientState::Complete;
                Ok(())
            }
            Err(reason) => {
                self.state = ScramClientState::Failed;
                Err(SaslError::ScramClient(reason))
            }
        }
    }

    fn fail_state(&mut self) -> SaslError {
        let state = self.state;
        self.state = ScramClientState::Failed;
        self.verifier = None;
        SaslError::UnexpectedClientMessage { state }
    }
}

/// A SCRAM client's credentials from its JAAS entry: the `username` and `password` options
/// of `ScramLoginModule`.
pub fn client_credentials(
    entry: &crate::jaas::JaasEntry,
) -> Result<crate::jaas::LoginCredentials, crate::jaas::JaasError> {
    entry.client_credentials(crate::jaas::SCRAM_LOGIN_MODULE)
}

/// RFC 5802's AuthMessage: client-first-message-bare "," server-first-message ","
/// client-final-message-without-proof, each as sent.
fn auth_message(
    client_first_bare: &str,
    server_first: &str,
    client_final_without_proof: &str,
) -> Vec<u8> {
    format!("{client_first_bare},{server_first},{client_final_without_proof}").into_bytes()
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// Kafka's `ScramFormatter.saslName`: `=` → `=3D`, `,` → `=2C`.
pub fn encode_saslname(username: &str) -> String {
    username.replace('=', "=3D").replace(',', "=2C")
}

/// Kafka's `ScramFormatter.username`: `=2C` → `,`, `=3D` → `=`; any other `=` is refused.
pub fn decode_saslname(saslname: &str) -> Option<String> {
    let mut out = String::with_capacity(saslname.len());
    let mut rest = saslname;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let escape = rest.get(i..i + 3)?;
        out.push(match escape {
            "=2C" => ',',
            "=3D" => '=',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

// The character classes of Kafka's `ScramMessages` patterns.

/// `value-char`: %x01-7F except `,`.
fn is_value_char(b: u8) -> bool {
    (0x01..=0x7f).contains(&b) && b != b','
}

/// `VALUE`: one or more value chars.
fn is_value(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_value_char)
}

/// `VALUE_SAFE`: one or more value chars but `=`.
fn is_value_safe(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| is_value_char(b) && b != b'=')
}

/// `PRINTABLE`: one or more of %x21-7E except `,` (nonces).
fn is_printable(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// `SASLNAME`: one or more value-safe chars, `=2C` or `=3D`.
fn is_saslname(s: &str) -> bool {
    is_saslname_chars(s) && decode_saslname(s).is_some()
}

/// The chars a `saslname` may hold, escapes aside (a bad escape is a bad user name).
fn is_saslname_chars(s: &str) -> bool {
    is_value(s)
}

/// `BASE64` as Kafka's pattern: groups of four, the last possibly `xxx=` or `xx==`;
/// empty is allowed.
fn is_base64(s: &str) -> bool {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return false;
    }
    let is_char = |c: &u8| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/';
    let padding = b.iter().rev().take_while(|c| **c == b'=').count();
    padding <= 2 && b[..b.len() - padding].iter().all(is_char)
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    if is_base64(s) {
        BASE64.decode(s).ok()
    } else {
        None
    }
}

/// `,ALPHA=VALUE` extensions: the name is the letters before the first `=`.
fn parse_extension(part: &str) -> Option<(&str, &str)> {
    let (key, value) = part.split_once('=')?;
    (!key.is_empty() && key.bytes().all(|b| b.is_ascii_alphabetic()) && is_value(value))
        .then_some((key, value))
}

fn lossy(message: &[u8]) -> String {
    String::from_utf8_lossy(message).into_owned()
}

/// `gs2-header [reserved-mext ","] username "," nonce ["," extensions]`.
struct ClientFirstMessage {
    /// As sent (`saslname`-encoded); `None` when empty.
    authzid: Option<String>,
    username: String,
    nonce: String,
    extensions: BTreeMap<String, String>,
    /// Everything after the gs2 header, as sent: part of the auth message.
    bare: String,
}

impl ClientFirstMessage {
    fn parse(message: &[u8]) -> Result<ClientFirstMessage, ScramFailure> {
        let invalid = || ScramFailure::InvalidClientFirstMessage(lossy(message));
        let text = std::str::from_utf8(message).map_err(|_| invalid())?;
        let parts: Vec<&str> = text.split(',').collect();
        if parts.len() < 4 {
            return Err(invalid());
        }
        match parts[0] {
            // `y`: the client could bind but thinks the server cannot (RFC 5802): right.
            "n" | "y" => {}
            flag if flag.starts_with("p=") => {
                return Err(ScramFailure::ChannelBindingNotSupported(lossy(message)))
            }
            _ => return Err(invalid()),
        }
        let authzid = match parts[1] {
            "" => None,
            a => match a.strip_prefix("a=") {
                Some(authzid) if is_saslname(authzid) => Some(authzid.to_string()),
                _ => return Err(invalid()),
            },
        };
        let mut i = 2;
        if let Some(reserved) = parts[i].strip_prefix("m=") {
            // Kafka's pattern accepts (and ignores) the reserved `m=` attribute.
            if !is_value(reserved) {
                return Err(invalid());
            }
            i += 1;
        }
        let saslname = parts
            .get(i)
            .and_then(|p| p.strip_prefix("n="))
            .filter(|s| is_saslname_chars(s))
            .ok_or_else(invalid)?;
        let nonce = parts
            .get(i + 1)
            .and_then(|p| p.strip_prefix("r="))
            .filter(|s| is_printable(s))
            .ok_or_else(invalid)?;
        let mut extensions = BTreeMap::new();
        for part in parts.iter().skip(i + 2) {
            let (key, value) = parse_extension(part).ok_or_else(invalid)?;
            extensions.insert(key.to_string(), value.to_string());
        }
        let username = decode_saslname(saslname)
            .ok_or_else(|| ScramFailure::InvalidUsername(saslname.to_string()))?;
        let gs2_len = parts[0].len() + parts[1].len() + 2;
        Ok(ClientFirstMessage {
            authzid,
            username,
            nonce: nonce.to_string(),
            extensions,
            bare: text[gs2_len..].to_string(),
        })
    }

    /// Kafka's `ScramExtensions.tokenAuthenticated`: Java's `Boolean.parseBoolean`.
    fn token_authenticated(&self) -> bool {
        self.extensions
            .get(TOKEN_AUTH_EXTENSION)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// `channel-binding "," nonce ["," extensions] "," proof`.
struct ClientFinalMessage<'a> {
    nonce: &'a str,
    proof: Vec<u8>,
    /// Everything before `,p=`, as sent: part of the auth message.
    without_proof: &'a str,
}

impl<'a> ClientFinalMessage<'a> {
    fn parse(message: &'a [u8]) -> Result<ClientFinalMessage<'a>, ScramFailure> {
        let invalid = || ScramFailure::InvalidClientFinalMessage(lossy(message));
        let text = std::str::from_utf8(message).map_err(|_| invalid())?;
        let parts: Vec<&str> = text.split(',').collect();
        if parts.len() < 3 {
            return Err(invalid());
        }
        // Kafka checks only that the channel binding is base64; it does not compare it
        // with the gs2 header.
        parts[0]
            .strip_prefix("c=")
            .filter(|c| is_base64(c))
            .ok_or_else(invalid)?;
        let nonce = parts[1]
            .strip_prefix("r=")
            .filter(|s| is_printable(s))
            .ok_or_else(invalid)?;
        let last = parts.len() - 1;
        for part in &parts[2..last] {
            parse_extension(part).ok_or_else(invalid)?;
        }
        let proof = parts[last]
            .strip_prefix("p=")
            .and_then(decode_base64)
            .ok_or_else(invalid)?;
        let without_proof = &text[..text.len() - parts[last].len() - 1];
        Ok(ClientFinalMessage {
            nonce,
            proof,
            without_proof,
        })
    }
}

/// `[reserved-mext ","] nonce "," salt "," iteration-count ["," extensions]`.
struct ServerFirstMessage<'a> {
    message: &'a str,
    nonce: &'a str,
    salt: Vec<u8>,
    iterations: i32,
}

impl<'a> ServerFirstMessage<'a> {
    fn parse(message: &'a [u8]) -> Result<ServerFirstMessage<'a>, ScramFailure> {
        let invalid = || ScramFailure::InvalidServerFirstMessage(lossy(message));
        let text = std::str::from_utf8(message).map_err(|_| invalid())?;
        let parts: Vec<&str> = text.split(',').collect();
        let mut i = 0;
        if let Some(reserved) = parts[0].strip_prefix("m=") {
            if !is_value(reserved) {
                return Err(invalid());
            }
            i += 1;
        }
        let nonce = parts
            .get(i)
            .and_then(|p| p.strip_prefix("r="))
            .filter(|s| is_printable(s))
            .ok_or_else(invalid)?;
        let salt = parts
            .get(i + 1)
            .and_then(|p| p.strip_prefix("s="))
            .and_then(decode_base64)
            .ok_or_else(invalid)?;
        let digits = parts
            .get(i + 2)
            .and_then(|p| p.strip_prefix("i="))
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(invalid)?;
        for part in parts.iter().skip(i + 3) {
            parse_extension(part).ok_or_else(invalid)?;
        }
        let iterations = match digits.parse::<i32>() {
            Ok(n) if n > 0 => n,
            _ => return Err(ScramFailure::InvalidServerIterations(digits.to_string())),
        };
        Ok(ServerFirstMessage {
            message: text,
            nonce,
            salt,
            iterations,
        })
    }
}

/// `("e=" server-error-value | "v=" base64 signature ["," extensions])`.
enum ServerFinalMessage {
    Error(String),
    Signature(Vec<u8>),
}

impl ServerFinalMessage {
    fn parse(message: &[u8]) -> Result<ServerFinalMessage, ScramFailure> {
        let invalid = || ScramFailure::InvalidServerFinalMessage(lossy(message));
        let text = std::str::from_utf8(message).map_err(|_| invalid())?;
        if let Some(error) = text.strip_prefix("e=") {
            return if is_value_safe(error) {
                Ok(ServerFinalMessage::Error(error.to_string()))
            } else {
                Err(invalid())
            };
        }
        let mut parts = text.split(',');
        let signature = parts
            .next()
            .and_then(|p| p.strip_prefix("v="))
            .and_then(decode_base64)
            .ok_or_else(invalid)?;
        for part in parts {
            parse_extension(part).ok_or_else(invalid)?;
        }
        Ok(ServerFinalMessage::Signature(signature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const RFC_SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const RFC_SALT_B64: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";

    fn rfc_credential() -> ScramCredential {
        let salt = BASE64.decode(RFC_SALT_B64).unwrap();
        ScramCredential::from_password(ScramMechanism::Sha256, "pencil", &salt, 4096)
    }

    fn credential(mechanism: ScramMechanism, password: &str) -> ScramCredential {
        ScramCredential::from_password(mechanism, password, b"some salt", 4096)
    }

    fn reason(err: &SaslError) -> &ScramFailure {
        err.reason().expect("a SCRAM failure")
    }

    /// Runs a whole exchange; the result of the server's final step.
    fn exchange(
        mechanism: ScramMechanism,
        user: &str,
        password: &str,
        stored: Option<ScramCredential>,
    ) -> Result<String, SaslError> {
        let mut client = ScramClient::new(mechanism, user, password);
        let mut server = ScramServer::new(mechanism);
        let server_first = server.handle_client_first(&client.client_first(), |_| stored)?;
        let client_final = client.handle_server_first(&server_first).unwrap();
        let (server_final, name) = server.handle_client_final(&client_final)?;
        client.handle_server_final(&server_final).unwrap();
        assert!(client.is_complete() && server.is_complete());
        assert_eq!(server.authorization_id(), Some(name.as_str()));
        Ok(name)
    }

    #[test]
    fn rfc7677_test_vector() {
        let mut client = ScramClient::with_client_nonce(
            ScramMechanism::Sha256,
            "user",
            "pencil",
            RFC_CLIENT_NONCE.to_string(),
        );
        let mut server = ScramServer::with_server_nonce(ScramMechanism::Sha256, RFC_SERVER_NONCE);

        let client_first = client.client_first();
        assert_eq!(client_first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let mut looked_up = None;
        let server_first = server
            .handle_client_first(&client_first, |user| {
                looked_up = Some(user.to_string());
                Some(rfc_credential())
            })
            .unwrap();
        assert_eq!(looked_up.as_deref(), Some("user"));
        assert_eq!(
            String::from_utf8(server_first.clone()).unwrap(),
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );

        let client_final = client.handle_server_first(&server_first).unwrap();
        assert_eq!(
            String::from_utf8(client_final.clone()).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        let (server_final, user) = server.handle_client_final(&client_final).unwrap();
        assert_eq!(user, "user");
        assert_eq!(
            String::from_utf8(server_final.clone()).unwrap(),
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        client.handle_server_final(&server_final).unwrap();
        assert!(client.is_complete());
        assert_eq!(server.state(), ScramServerState::Complete);
    }

    #[test]
    fn credential_from_salted_password_matches_from_password() {
        for mechanism in ScramMechanism::ALL {
            let salt = random_salt();
            let salted = salted_password(mechanism, "secret", &salt, 8192);
            assert_eq!(salted.len(), mechanism.output_len());
            let a = ScramCredential::from_salted_password(mechanism, &salted, &salt, 8192);
            let b = ScramCredential::from_password(mechanism, "secret", &salt, 8192);
            assert_eq!(a, b);
            assert_eq!(a.salt, salt);
            assert_eq!(a.iterations, 8192);
            assert!(!format!("{a:?}").contains(&format!("{:?}", a.stored_key)));
        }
        // RFC 7677's salted password (RFC 5802's Hi is PBKDF2-HMAC with one block).
        let salt = BASE64.decode(RFC_SALT_B64).unwrap();
        let salted = salted_password(ScramMechanism::Sha256, "pencil", &salt, 4096);
        let mut expected = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(b"pencil", &salt, 4096, &mut expected);
        assert_eq!(salted, expected);
        // Zero or negative iterations act as one round, as Kafka's loop, and do not panic.
        assert_eq!(
            salted_password(ScramMechanism::Sha512, "x", b"s", -5),
            salted_password(ScramMechanism::Sha512, "x", b"s", 1)
        );
    }

    #[test]
    fn sha512_round_trip() {
        let stored = credential(ScramMechanism::Sha512, "p\u{e4}ssword");
        let user = exchange(
            ScramMechanism::Sha512,
            "alice",
            "p\u{e4}ssword",
            Some(stored),
        )
        .unwrap();
        assert_eq!(user, "alice");
    }

    #[test]
    fn user_names_with_comma_and_equals() {
        let name = "a,b=c";
        assert_eq!(encode_saslname(name), "a=2Cb=3Dc");
        let mut seen = None;
        let mut client = ScramClient::new(ScramMechanism::Sha256, name, "pw");
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        let first = client.client_first();
        assert!(first.starts_with(b"n,,n=a=2Cb=3Dc,r="));
        let server_first = server
            .handle_client_first(&first, |user| {
                seen = Some(user.to_string());
                Some(credential(ScramMechanism::Sha256, "pw"))
            })
            .unwrap();
        assert_eq!(seen.as_deref(), Some(name));
        let client_final = client.handle_server_first(&server_first).unwrap();
        assert_eq!(server.handle_client_final(&client_final).unwrap().1, name);
    }

    #[test]
    fn wrong_password() {
        let stored = credential(ScramMechanism::Sha256, "right");
        let mut client = ScramClient::new(ScramMechanism::Sha256, "alice", "wrong");
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        let server_first = server
            .handle_client_first(&client.client_first(), |_| Some(stored))
            .unwrap();
        let client_final = client.handle_server_first(&server_first).unwrap();
        let err = server.handle_client_final(&client_final).unwrap_err();
        assert_eq!(reason(&err), &ScramFailure::InvalidClientProof);
        assert_eq!(
            err.to_string(),
            "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
        );
        assert_eq!(
            err.error_message(true),
            "Authentication failed during re-authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
        );
        assert_eq!(server.state(), ScramServerState::Failed);
        assert!(server.authorization_id().is_none());
    }

    #[test]
    fn credential_of_the_other_mechanism_fails() {
        let stored = credential(ScramMechanism::Sha512, "pw");
        let err = exchange(ScramMechanism::Sha256, "alice", "pw", Some(stored)).unwrap_err();
        assert_eq!(reason(&err), &ScramFailure::InvalidClientProof);
    }

    #[test]
    fn unknown_user() {
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        let err = server
            .handle_client_first(b"n,,n=nobody,r=abc", |_| None)
            .unwrap_err();
        assert_eq!(reason(&err), &ScramFailure::InvalidUserCredentials);
        assert_eq!(
            err.reason().unwrap().to_string(),
            "Authentication failed: Invalid user credentials"
        );
        assert!(err
            .to_string()
            .starts_with("Authentication failed during authentication"));
        assert_eq!(server.state(), ScramServerState::Failed);
        // An authzid does not change the answer for an unknown user.
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        let err = server
            .handle_client_first(b"n,a=other,n=nobody,r=abc", |_| None)
            .unwrap_err();
        assert_eq!(reason(&err), &ScramFailure::InvalidUserCredentials);
    }

    #[test]
    fn tampered_nonces_and_proofs() {
        let stored = credential(ScramMechanism::Sha256, "pw");
        let start = || {
            let mut client = ScramClient::new(ScramMechanism::Sha256, "alice", "pw");
            let mut server = ScramServer::new(ScramMechanism::Sha256);
            let server_first = server
                .handle_client_first(&client.client_first(), |_| Some(stored.clone()))
                .unwrap();
            let client_final =
                String::from_utf8(client.handle_server_first(&server_first).unwrap()).unwrap();
            (server, client_final, server_first)
        };

        // A changed nonce in client-final.
        let (mut server, client_final, _) = start();
        let tampered = client_final
            .replacen(",r=", ",r=x", 1)
            .replacen(",p=", "y,p=", 1);
        let err = server.handle_client_final(tampered.as_bytes()).unwrap_err();
        assert_eq!(reason(&err), &ScramFailure::InvalidClientNonce);

        // A changed proof.
        let (mut server, client_final, _) = start();
        let (head, proof) = client_final.split_once(",p=").unwrap();
        let mut proof = BASE64.decode(proof).unwrap();
        proof[0] ^= 1;
        let tampered = format!("{head},p={}", BASE64.encode(&proof));
        let err = server.handle_client_final(tampered.as_bytes()).unwrap_err();
        assert_eq!(reason(&err), &ScramFailure::InvalidClientProof);

        // A proof of the wrong length, and an empty one.
        for proof in ["AAAA", ""] {
            let (mut server, client_final, _) = start();
            let (head, _) = client_final.split_once(",p=").unwrap();
            let err = server
                .handle_client_final(format!("{head},p={proof}").as_bytes())
                .unwrap_err();
            assert_eq!(reason(&err), &ScramFailure::InvalidClientProof);
        }

        // A server nonce that does not extend the client's.
        let mut client = ScramClient::new(ScramMechanism::Sha256, "alice", "pw");
        client.client_first();
        let err = client
            .handle_server_first(b"r=someoneelse,s=c2FsdA==,i=4096")
            .unwrap_err();
        assert_eq!(reason(&err), &ScramFailure::InvalidServerNonce);
        assert_eq!(client.state(), ScramClientState::Failed);

        // A forged server signature.
        let mut client = ScramClient::new(ScramMechanism::Sha256, "alice", "pw");
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        let server_first = server
            .handle_client_first(&client.client_first(), |_| Some(stored.clone()))
            .unwrap();
        client.handle_server_first(&server_first).unwrap();
        let err = client
            .handle_server_final(format!("v={}", BASE64.encode([7u8; 32])).as_bytes())
            .unwrap_err();
        assert_eq!(reason(&err), &ScramFailure::InvalidServerSignature);
        assert_eq!(
            err.to_string(),
            "Invalid server signature in server final message"
        );
    }

    #[test]
    fn saslname_escapes() {
        assert_eq!(decode_saslname("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(decode_saslname("=3D2C").as_deref(), Some("=2C"));
        for bad in ["a=2c", "a=", "a=3", "=XY", "a=2Db", "=3d"] {
            assert_eq!(decode_saslname(bad), None, "{bad}");
            let mut server = ScramServer::new(ScramMechanism::Sha256);
            let message = format!("n,,n={bad},r=abc");
            let err = server
                .handle_client_first(message.as_bytes(), |_| panic!("no lookup"))
                .unwrap_err();
            assert_eq!(
                reason(&err),
                &ScramFailure::InvalidUsername(bad.to_string()),
                "{bad}"
            );
        }
        // A bad escape in the authzid makes the message malformed.
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        let err = server
            .handle_client_first(b"n,a=x=,n=x,r=abc", |_| panic!("no lookup"))
            .unwrap_err();
        assert!(matches!(
            reason(&err),
            ScramFailure::InvalidClientFirstMessage(_)
        ));
    }

    #[test]
    fn gs2_header_and_authzid() {
        let stored = || Some(credential(ScramMechanism::Sha256, "pw"));
        let first = |message: &[u8]| {
            ScramServer::new(ScramMechanism::Sha256).handle_client_first(message, |_| stored())
        };
        assert!(first(b"n,,n=alice,r=abc").is_ok());
        assert!(first(b"y,,n=alice,r=abc").is_ok());
        assert!(first(b"n,a=alice,n=alice,r=abc").is_ok());
        assert!(first(b"n,,m=ext,n=alice,r=abc").is_ok());
        assert_eq!(
            first(b"n,a=bob,n=alice,r=abc").unwrap_err(),
            SaslError::AuthorizationIdMismatch
        );
        let err = first(b"p=tls-unique,,n=alice,r=abc").unwrap_err();
        assert!(matches!(
            reason(&err),
            ScramFailure::ChannelBindingNotSupported(_)
        ));
        for bad in [
            &b"x,,n=alice,r=abc"[..],
            b"n,n=alice,r=abc",
            b"n,,n=alice",
            b"n,,n=,r=abc",
            b"n,,n=alice,r=",
            b"n,,n=alice,r=a b",
            b"n,,r=abc,n=alice",
            b"n,,n=alice,r=abc,",
            b"n,,n=alice,r=abc,1x=y",
            b"n,,n=alice,r=abc,x=",
            b"n,,n=al\xc3\xa9,r=abc",
            b"n,,n=al\0ice,r=abc",
            b"",
            b",,,",
        ] {
            let err = first(bad).unwrap_err();
            assert!(
                matches!(reason(&err), ScramFailure::InvalidClientFirstMessage(_)),
                "{:?}: {err:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn non_utf8_input() {
        let mut server = ScramServer::new(ScramMechanism::Sha512);
        let err = server
            .handle_client_first(b"n,,n=\xff\xfe,r=abc", |_| panic!("no lookup"))
            .unwrap_err();
        assert!(matches!(
            reason(&err),
            ScramFailure::InvalidClientFirstMessage(_)
        ));

        let mut server = ScramServer::new(ScramMechanism::Sha512);
        server
            .handle_client_first(b"n,,n=alice,r=abc", |_| {
                Some(credential(ScramMechanism::Sha512, "pw"))
            })
            .unwrap();
        let err = server.handle_client_final(b"c=biws,r=\x80,p=").unwrap_err();
        assert!(matches!(
            reason(&err),
            ScramFailure::InvalidClientFinalMessage(_)
        ));

        let mut client = ScramClient::new(ScramMechanism::Sha512, "alice", "pw");
        client.client_first();
        let err = client.handle_server_first(b"\xc3\x28").unwrap_err();
        assert!(matches!(
            reason(&err),
            ScramFailure::InvalidServerFirstMessage(_)
        ));
    }

    #[test]
    fn extensions() {
        let stored = credential(ScramMechanism::Sha256, "pw");
        for value in ["true", "TRUE", "True"] {
            let mut server = ScramServer::new(ScramMechanism::Sha256);
            let message = format!("n,,n=tokenid,r=abc,tokenauth={value}");
            let err = server
                .handle_client_first(message.as_bytes(), |_| panic!("no lookup"))
                .unwrap_err();
            assert_eq!(
                reason(&err),
                &ScramFailure::TokenAuthNotSupported("tokenid".into())
            );
        }

        // `tokenauth=false` and unknown extensions: a normal exchange, the extensions kept
        // and covered by the proof as sent.
        let mut client = ScramClient::new(ScramMechanism::Sha256, "alice", "pw");
        client
            .client_first_bare
            .push_str(",tokenauth=false,zeta=1,alpha=a=b");
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        let server_first = server
            .handle_client_first(&client.client_first(), |_| Some(stored.clone()))
            .unwrap();
        let client_final = client.handle_server_first(&server_first).unwrap();
        let (server_final, user) = server.handle_client_final(&client_final).unwrap();
        assert_eq!(user, "alice");
        client.handle_server_final(&server_final).unwrap();
        let kept: Vec<(&str, &str)> = server
            .extensions()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            kept,
            vec![("alpha", "a=b"), ("tokenauth", "false"), ("zeta", "1")]
        );
    }

    #[test]
    fn client_final_with_extensions_is_accepted() {
        let stored = credential(ScramMechanism::Sha256, "pw");
        let mut server = ScramServer::with_server_nonce(ScramMechanism::Sha256, "SERVER");
        let bare = "n=alice,r=CLIENT";
        let server_first = server
            .handle_client_first(format!("n,,{bare}").as_bytes(), |_| Some(stored.clone()))
            .unwrap();
        let server_first = String::from_utf8(server_first).unwrap();
        let without_proof = "c=biws,r=CLIENTSERVER,ext=1";
        let auth = auth_message(bare, &server_first, without_proof);
        let salted = salted_password(ScramMechanism::Sha256, "pw", b"some salt", 4096);
        let client_key = ScramMechanism::Sha256.client_key(&salted);
        let signature =
            ScramMechanism::Sha256.hmac(&ScramMechanism::Sha256.hash(&client_key), &[&auth]);
        let proof = BASE64.encode(xor(&client_key, &signature));
        let message = format!("{without_proof},p={proof}");
        assert_eq!(
            server.handle_client_final(message.as_bytes()).unwrap().1,
            "alice"
        );
    }

    #[test]
    fn too_few_iterations() {
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        let weak = ScramCredential::from_password(ScramMechanism::Sha256, "pw", b"salt", 4095);
        let err = server
            .handle_client_first(b"n,,n=alice,r=abc", |_| Some(weak))
            .unwrap_err();
        assert_eq!(
            reason(&err),
            &ScramFailure::CredentialIterationsTooFew {
                iterations: 4095,
                minimum: 4096,
                mechanism: ScramMechanism::Sha256
            }
        );

        let client_with = |server_first: &str| {
            let mut client = ScramClient::with_client_nonce(
                ScramMechanism::Sha512,
                "alice",
                "pw",
                "abc".to_string(),
            );
            client.client_first();
            client.handle_server_first(server_first.as_bytes())
        };
        let err = client_with("r=abcdef,s=c2FsdA==,i=4095").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Requested iterations 4095 is less than the minimum 4096 for SCRAM-SHA-512"
        );
        for bad in ["0", "000", "2147483648", "99999999999999999999999"] {
            let err = client_with(&format!("r=abcdef,s=c2FsdA==,i={bad}")).unwrap_err();
            assert_eq!(
                reason(&err),
                &ScramFailure::InvalidServerIterations(bad.to_string())
            );
        }
        for bad in [
            "r=abcdef,s=c2FsdA=,i=4096",
            "r=abcdef,s=c2FsdA==,i=-4096",
            "r=abcdef,s=c2FsdA==,i=",
            "r=abcdef,s=c2FsdA==",
            "s=c2FsdA==,r=abcdef,i=4096",
            "r=abcdef,s=c2FsdA==,i=4096,",
            "",
        ] {
            let err = client_with(bad).unwrap_err();
            assert!(
                matches!(reason(&err), ScramFailure::InvalidServerFirstMessage(_)),
                "{bad}: {err:?}"
            );
        }
        assert!(client_with("m=x,r=abcdef,s=,i=4096,ext=1").is_ok());
    }

    #[test]
    fn server_final_errors() {
        let mut client = ScramClient::with_client_nonce(
            ScramMechanism::Sha256,
            "alice",
            "pw",
            "abc".to_string(),
        );
        client.client_first();
        client
            .handle_server_first(b"r=abcdef,s=c2FsdA==,i=4096")
            .unwrap();
        let err = client.handle_server_final(b"e=invalid-proof").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Sasl authentication using SCRAM-SHA-256 failed with error: invalid-proof"
        );
        assert_eq!(client.state(), ScramClientState::Failed);

        for bad in [&b"e="[..], b"e=a=b", b"v=abc", b"x=1", b"v=AAAA,", b""] {
            let mut client = ScramClient::with_client_nonce(
                ScramMechanism::Sha256,
                "alice",
                "pw",
                "abc".to_string(),
            );
            client.client_first();
            client
                .handle_server_first(b"r=abcdef,s=c2FsdA==,i=4096")
                .unwrap();
            let err = client.handle_server_final(bad).unwrap_err();
            assert!(
                matches!(reason(&err), ScramFailure::InvalidServerFinalMessage(_)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn out_of_order_calls() {
        let stored = credential(ScramMechanism::Sha256, "pw");

        // Server: final before first.
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        let err = server.handle_client_final(b"c=biws,r=abc,p=").unwrap_err();
        assert_eq!(
            err,
            SaslError::UnexpectedServerMessage {
                state: ScramServerState::ReceiveClientFirstMessage
            }
        );
        assert!(err.is_illegal_state());
        assert_eq!(
            err.to_string(),
            "Unexpected challenge in Sasl server state RECEIVE_CLIENT_FIRST_MESSAGE"
        );
        assert_eq!(server.state(), ScramServerState::Failed);
        let err = server
            .handle_client_first(b"n,,n=alice,r=abc", |_| Some(stored.clone()))
            .unwrap_err();
        assert_eq!(
            err,
            SaslError::UnexpectedServerMessage {
                state: ScramServerState::Failed
            }
        );

        // Server: first twice.
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        server
            .handle_client_first(b"n,,n=alice,r=abc", |_| Some(stored.clone()))
            .unwrap();
        let err = server
            .handle_client_first(b"n,,n=alice,r=abc", |_| Some(stored.clone()))
            .unwrap_err();
        assert_eq!(
            err,
            SaslError::UnexpectedServerMessage {
                state: ScramServerState::ReceiveClientFinalMessage
            }
        );

        // Server: anything after completion.
        let mut client = ScramClient::new(ScramMechanism::Sha256, "alice", "pw");
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        let server_first = server
            .handle_client_first(&client.client_first(), |_| Some(stored.clone()))
            .unwrap();
        let client_final = client.handle_server_first(&server_first).unwrap();
        let (server_final, _) = server.handle_client_final(&client_final).unwrap();
        assert_eq!(
            server.handle_client_final(&client_final).unwrap_err(),
            SaslError::UnexpectedServerMessage {
                state: ScramServerState::Complete
            }
        );

        // Client: server-final and server-first again after completion, server-first
        // before client-first.
        client.handle_server_final(&server_final).unwrap();
        assert_eq!(
            client.handle_server_final(&server_final).unwrap_err(),
            SaslError::UnexpectedClientMessage {
                state: ScramClientState::Complete
            }
        );
        let mut client = ScramClient::new(ScramMechanism::Sha256, "alice", "pw");
        assert_eq!(
            client.handle_server_first(&server_first).unwrap_err(),
            SaslError::UnexpectedClientMessage {
                state: ScramClientState::SendClientFirstMessage
            }
        );
        let mut client = ScramClient::new(ScramMechanism::Sha256, "alice", "pw");
        client.client_first();
        assert_eq!(
            client.handle_server_final(b"v=").unwrap_err(),
            SaslError::UnexpectedClientMessage {
                state: ScramClientState::ReceiveServerFirstMessage
            }
        );
    }

    #[test]
    fn mechanisms() {
        for (mechanism, name, code) in [
            (ScramMechanism::Sha256, "SCRAM-SHA-256", 1),
            (ScramMechanism::Sha512, "SCRAM-SHA-512", 2),
        ] {
            assert_eq!(mechanism.mechanism_name(), name);
            assert_eq!(mechanism.to_string(), name);
            assert_eq!(ScramMechanism::from_mechanism_name(name), Some(mechanism));
            assert_eq!(mechanism.type_code(), code);
            assert_eq!(ScramMechanism::from_type_code(code), Some(mechanism));
            assert_eq!(mechanism.min_iterations(), 4096);
            assert_eq!(mechanism.max_iterations(), 16384);
        }
        assert_eq!(
            ScramMechanism::from_type_code(ScramMechanism::UNKNOWN_TYPE_CODE),
            None
        );
        assert_eq!(ScramMechanism::from_type_code(3), None);
        assert_eq!(ScramMechanism::from_type_code(-1), None);
        assert_eq!(ScramMechanism::from_mechanism_name("scram-sha-256"), None);
        assert_eq!(ScramMechanism::from_mechanism_name("SCRAM-SHA-1"), None);
    }

    #[test]
    fn random_strings_are_kafkas_base36() {
        assert_eq!(base36([0; 17]), "0");
        let mut n = [0u8; 17];
        n[16] = 35;
        assert_eq!(base36(n), "z");
        n[16] = 36;
        assert_eq!(base36(n), "10");
        let mut max = [0xff; 17];
        max[0] = 0x03;
        assert_eq!(base36(max), "1omfro7zwmumr3umxudzyj6scf");

        let a = random_salt();
        let b = random_salt();
        assert_ne!(a, b);
        for salt in [a, b] {
            assert!(!salt.is_empty() && salt.len() <= 26);
            assert!(salt
                .iter()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()));
        }
    }

    #[test]
    fn plain_errors_are_not_scram_failures() {
        assert_eq!(SaslError::InvalidUsernameOrPassword.reason(), None);
        assert!(!SaslError::AuthorizationIdMismatch.is_illegal_state());
        assert_eq!(
            SaslError::AuthorizationIdMismatch.error_message(true),
            SaslError::AuthorizationIdMismatch.to_string()
        );
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        fn stored(mechanism: ScramMechanism) -> ScramCredential {
            ScramCredential::from_password(mechanism, "pw", b"salt", 4096)
        }

        fn mechanism() -> impl Strategy<Value = ScramMechanism> {
            prop_oneof![Just(ScramMechanism::Sha256), Just(ScramMechanism::Sha512)]
        }

        proptest! {
            #[test]
            fn server_never_panics(
                mechanism in mechanism(),
                first in proptest::collection::vec(any::<u8>(), 0..80),
                last in proptest::collection::vec(any::<u8>(), 0..80),
            ) {
                let mut server = ScramServer::new(mechanism);
                let _ = server.handle_client_first(&first, |_| Some(stored(mechanism)));
                let _ = server.handle_client_final(&last);
                let _ = server.handle_client_final(&last);
            }

            #[test]
            fn server_never_panics_on_scram_like_input(
                first in "[nyp],(a=[a-z=2CD]{0,4})?,(m=x,)?n=[a-z=2CD,]{0,6},r=[!-~]{0,6}(,[a-z]{1,3}=[a-z=]{0,3}){0,2}",
                last in "c=[a-zA-Z0-9+/=]{0,8},r=[!-~]{0,10}(,[a-z]=[a-z]){0,2},p=[a-zA-Z0-9+/=]{0,12}",
            ) {
                let mut server = ScramServer::new(ScramMechanism::Sha256);
                if server.handle_client_first(first.as_bytes(), |_| Some(stored(ScramMechanism::Sha256))).is_ok() {
                    let _ = server.handle_client_final(last.as_bytes());
                }
            }

            #[test]
            fn client_never_panics(
                first in proptest::collection::vec(any::<u8>(), 0..80),
                last in proptest::collection::vec(any::<u8>(), 0..80),
                salt in proptest::collection::vec(any::<u8>(), 0..8),
                suffix in "[!-+--~]{0,8}",
            ) {
                let mut client = ScramClient::new(ScramMechanism::Sha256, "u", "p");
                let nonce = String::from_utf8(client.client_first()).unwrap()
                    .rsplit_once("r=").unwrap().1.to_string();
                let _ = client.handle_server_first(&first);
                let mut client = ScramClient::new(ScramMechanism::Sha256, "u", "p");
                client.client_first();
                let server_first = format!("r={}{suffix},s={},i=4096", nonce, BASE64.encode(&salt));
                let _ = client.handle_server_first(server_first.as_bytes());
                let _ = client.handle_server_final(&last);
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(12))]

            #[test]
            fn round_trip(
                mechanism in mechanism(),
                user in "[\x01-\x7f]{1,12}",
                password in any::<String>(),
            ) {
                let credential = ScramCredential::from_password(mechanism, &password, &random_salt(), 4096);
                let mut client = ScramClient::new(mechanism, &user, &password);
                let mut server = ScramServer::new(mechanism);
                let mut seen = None;
                let server_first = server
                    .handle_client_first(&client.client_first(), |u| {
                        seen = Some(u.to_string());
                        Some(credential)
                    })
                    .unwrap();
                prop_assert_eq!(seen.as_deref(), Some(user.as_str()));
                let client_final = client.handle_server_first(&server_first).unwrap();
                let (server_final, name) = server.handle_client_final(&client_final).unwrap();
                prop_assert_eq!(name, user);
                client.handle_server_final(&server_final).unwrap();
            }
        }
    }
}
