//! TLS and SASL for the protocol client: the settings ([`WireSecurity`]), made from client
//! properties with librdkafka's names ([`WireSecurity::from_librdkafka`]), and the SASL
//! exchange a connection starts with (SaslHandshake v1, then SaslAuthenticate tokens for
//! PLAIN or SCRAM, as Kafka's Java client).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use moldau_security::plain;
use moldau_security::scram::{ScramClient, ScramMechanism};
use moldau_security::tls::{SslConfig, SslProps};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::CertificateDer;

use super::{Connection, WireError};

/// Client properties that make no [`WireSecurity`]: the message names the property and
/// what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl ConfigError {
    fn new(message: impl Into<String>) -> ConfigError {
        ConfigError(message.into())
    }
}

/// A [`ConfigError`] from a format string.
macro_rules! config_error {
    ($($arg:tt)*) => {
        ConfigError::new(format!($($arg)*))
    };
}

/// Returns a [`ConfigError`] from a format string.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err(config_error!($($arg)*))
    };
}

/// Client properties with librdkafka's names (`security.protocol`, `sasl.*`, `ssl.*`), as
/// the callers hold them.
pub trait Properties {
    /// The value of `key`, if set.
    fn get(&self, key: &str) -> Option<&str>;
}

impl Properties for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(String::as_str)
    }
}

impl Properties for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(String::as_str)
    }
}

/// Where OpenSSL-based tools look for the system's CA certificates, when no trust store is
/// given (librdkafka's default; Java's is its own `cacerts`).
const SYSTEM_CA_FILES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// A SASL mechanism this client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    Scram(ScramMechanism),
}

impl SaslMechanism {
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Scram(m) => m.mechanism_name(),
        }
    }
}

/// A SASL login: mechanism, user and password.
#[derive(Clone)]
pub struct SaslLogin {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

impl fmt::Debug for SaslLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslLogin")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"[hidden]")
            .finish()
    }
}

/// How a connection is secured: TLS (SSL, SASL_SSL) and SASL (SASL_PLAINTEXT, SASL_SSL).
#[derive(Clone, Default)]
pub struct WireSecurity {
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub sasl: Option<SaslLogin>,
}

impl fmt::Debug for WireSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WireSecurity")
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl)
            .finish()
    }
}

impl WireSecurity {
    /// From client properties with librdkafka's names: `security.protocol` (PLAINTEXT when
    /// unset) says whether TLS and SASL are used. TLS from `ssl.*`: the trust store from
    /// `ssl.ca.pem` or `ssl.ca.location` (the system's CA bundle when neither is set), a
    /// client certificate from `ssl.certificate.*` and `ssl.key.*` (PEM) or
    /// `ssl.keystore.*` (PKCS12). SASL from `sasl.mechanism` (or `sasl.mechanisms`),
    /// `sasl.username` and `sasl.password`. Other keys are not looked at.
    pub fn from_librdkafka<P: Properties + ?Sized>(
        properties: &P,
    ) -> Result<WireSecurity, ConfigError> {
        let (tls, sasl) = match properties.get("security.protocol") {
            None => (false, false),
            Some(v) => match v.trim().to_ascii_uppercase().as_str() {
                "PLAINTEXT" => (false, false),
                "SSL" => (true, false),
                "SASL_PLAINTEXT" => (false, true),
                "SASL_SSL" => (true, true),
                _ => bail!(
                    "security.protocol: {v} is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
                ),
            },
        };
        let tls = if tls {
            Some(tls_config(properties)?)
        } else {
            None
        };
        let sasl = if sasl {
            Some(sasl_login(properties)?)
        } else {
            None
        };
        Ok(WireSecurity { tls, sasl })
    }
}

fn sasl_login<P: Properties + ?Sized>(properties: &P) -> Result<SaslLogin, ConfigError> {
    let name = properties
        .get("sasl.mechanism")
        .or_else(|| properties.get("sasl.mechanisms"))
        .map(str::trim)
        .unwrap_or("GSSAPI");
    let mechanism = match name {
        "PLAIN" => SaslMechanism::Plain,
        other => match ScramMechanism::from_mechanism_name(other) {
            Some(m) => SaslMechanism::Scram(m),
            None => bail!(
                "sasl.mechanism: {other} is not supported by this command (PLAIN, \
                 SCRAM-SHA-256 or SCRAM-SHA-512)"
            ),
        },
    };
    match (
        properties.get("sasl.username"),
        properties.get("sasl.password"),
    ) {
        (Some(username), Some(password)) => Ok(SaslLogin {
            mechanism,
            username: username.to_string(),
            password: password.to_string(),
        }),
        _ => bail!(
            "SASL {} needs a user name and a password: sasl.jaas.config in \
             --command-config, or -X sasl.username and -X sasl.password",
            mechanism.name()
        ),
    }
}

/// The rustls client configuration from librdkafka's `ssl.*` names, loaded as
/// `moldau_security` loads Kafka's: the trust store from `ssl.ca.pem` or
/// `ssl.ca.location` (a PEM file or a directory of them; the system's CA bundle when
/// neither is set), the key store from `ssl.certificate.*` and `ssl.key.*` (PEM) or
/// `ssl.keystore.*` (PKCS12).
fn tls_config<P: Properties + ?Sized>(
    properties: &P,
) -> Result<Arc<rustls::ClientConfig>, ConfigError> {
    let get = |key: &str| properties.get(key).filter(|v| !v.trim().is_empty());
    if properties
        .get("enable.ssl.certificate.verification")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("false"))
    {
        bail!("enable.ssl.certificate.verification=false is not supported by this command");
    }
    // The key store, in Kafka's terms, for moldau-security to load.
    let mut java = BTreeMap::new();
    let mut put = |key: &str, value: String| {
        java.insert(key.to_string(), value);
    };
    let read = |key: &str, path: &str| {
        std::fs::read_to_string(path).map_err(|e| config_error!("{key}: cannot read {path}: {e}"))
    };
    let chain = match (get("ssl.certificate.pem"), get("ssl.certificate.location")) {
        (Some(pem), _) => Some(pem.to_string()),
        (None, Some(path)) => Some(read("ssl.certificate.location", path)?),
        (None, None) => None,
    };
    let key = match (get("ssl.key.pem"), get("ssl.key.location")) {
        (Some(pem), _) => Some(pem.to_string()),
        (None, Some(path)) => Some(read("ssl.key.location", path)?),
        (None, None) => None,
    };
    match (chain, key, get("ssl.keystore.location")) {
        (Some(chain), Some(key), None) => {
            put("ssl.keystore.type", "PEM".into());
            put("ssl.keystore.certificate.chain", chain);
            put("ssl.keystore.key", key);
            if let Some(password) = get("ssl.key.password") {
                put("ssl.key.password", password.to_string());
            }
        }
        (None, None, Some(location)) => {
            put("ssl.keystore.type", "PKCS12".into());
            put("ssl.keystore.location", location.to_string());
            if let Some(password) = properties.get("ssl.keystore.password") {
                put("ssl.keystore.password", password.to_string());
            }
        }
        (None, None, None) => {}
        _ => bail!(
            "a client certificate needs ssl.certificate.* and ssl.key.* together, or \
             ssl.keystore.location alone"
        ),
    }
    if let Some(v) = properties.get("ssl.endpoint.identification.algorithm") {
        let java_value = match v.trim().to_ascii_lowercase().as_str() {
            "https" => "https",
            "none" | "" => "",
            _ => bail!("ssl.endpoint.identification.algorithm: {v} is not https or none"),
        };
        put("ssl.endpoint.identification.algorithm", java_value.into());
    }
    let mut config =
        SslConfig::load(&SslProps::new(&java, "")).map_err(|e| config_error!("{e}"))?;
    config.trust_store = Some(match (get("ssl.ca.pem"), get("ssl.ca.location")) {
        (Some(pem), _) => pem_certificates("ssl.ca.pem", pem.as_bytes())?,
        (None, Some(location)) => ca_location(location)?,
        (None, None) => system_ca()?,
    });
    config.client_config().map_err(|e| config_error!("{e}"))
}

fn pem_certificates(key: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| config_error!("{key}: bad PEM certificate: {e}"))?;
    if certs.is_empty() {
        bail!("{key}: no certificate");
    }
    Ok(certs)
}

/// `ssl.ca.location`: a PEM file, or a directory whose files are PEM certificates.
fn ca_location(location: &str) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let key = "ssl.ca.location";
    let path = Path::new(location);
    if !path.is_dir() {
        let pem =
            std::fs::read(path).map_err(|e| config_error!("{key}: cannot read {location}: {e}"))?;
        return pem_certificates(key, &pem);
    }
    let mut certs = Vec::new();
    let entries =
        std::fs::read_dir(path).map_err(|e| config_error!("{key}: cannot read {location}: {e}"))?;
    for entry in entries.flatten() {
        if let Ok(pem) = std::fs::read(entry.path()) {
            certs.extend(
                CertificateDer::pem_slice_iter(&pem)
                    .filter_map(Result::ok)
                    .filter(|c| !certs.contains(c))
                    .collect::<Vec<_>>(),
            );
        }
    }
    if certs.is_empty() {
        bail!("{key}: no PEM certificate in {location}");
    }
    Ok(certs)
}

/// The system's CA bundle (`$SSL_CERT_FILE`, else the usual places), the certificates
/// rustls can take as trust anchors.
fn system_ca() -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let from_env = std::env::var("SSL_CERT_FILE").ok();
    let candidates = from_env
        .iter()
        .map(String::as_str)
        .chain(SYSTEM_CA_FILES.iter().copied());
    for file in candidates {
        let Ok(pem) = std::fs::read(file) else {
            continue;
        };
        let usable: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .filter_map(Result::ok)
            .filter(|c| rustls::RootCertStore::empty().add(c.clone()).is_ok())
            .collect();
        if !usable.is_empty() {
            return Ok(usable);
        }
    }
    bail!(
        "no trust store: set ssl.truststore.location (--command-config) or -X \
         ssl.ca.location; no system CA bundle was found"
    )
}

impl Connection {
    /// SaslHandshake v1 and SaslAuthenticate, as Kafka's client: a refusal is a
    /// [`WireError::Authentication`] with the broker's message.
    pub(super) async fn authenticate(&mut self, login: &SaslLogin) -> Result<(), WireError> {
        let mechanism = login.mechanism;
        let handshake_version = self.version::<SaslHandshakeRequest>()?;
        if handshake_version < 1 {
            return Err(self.auth_error(
                mechanism,
                "the broker supports only SaslHandshake v0 (no SaslAuthenticate)".to_string(),
            ));
        }
        let request = SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_static_str(mechanism.name()));
        let body = self.round_trip(&request, 1).await?;
        let response: SaslHandshakeResponse = self.decode(&body, 1)?;
        if let Some(error) = ResponseError::try_from_code(response.error_code) {
            let message = if error == ResponseError::UnsupportedSaslMechanism {
                let offered: Vec<&str> = response.mechanisms.iter().map(|m| m.as_str()).collect();
                format!(
                    "the broker does not offer {} on this listener (it offers {})",
                    mechanism.name(),
                    offered.join(", ")
                )
            } else {
                format!("SaslHandshake failed: {error}")
            };
            return Err(self.auth_error(mechanism, message));
        }
        let version = self.version::<SaslAuthenticateRequest>()?;
        match mechanism {
            SaslMechanism::Plain => {
                let token = plain::client_token(&login.username, &login.password);
                self.sasl_step(mechanism, token, version).await?;
            }
            SaslMechanism::Scram(scram) => {
                let mut client = ScramClient::new(scram, &login.username, &login.password);
                let server_first = self
                    .sasl_step(mechanism, client.client_first(), version)
                    .await?;
                let client_final = client
                    .handle_server_first(&server_first)
                    .map_err(|e| self.auth_error(mechanism, e.to_string()))?;
                let server_final = self.sasl_step(mechanism, client_final, version).await?;
                client
                    .handle_server_final(&server_final)
                    .map_err(|e| self.auth_error(mechanism, e.to_string()))?;
            }
        }
        Ok(())
    }

    async fn sasl_step(
        &mut self,
        mechanism: SaslMechanism,
        token: Vec<u8>,
        version: i16,
    ) -> Result<Vec<u8>, WireError> {
        let request = SaslAuthenticateRequest::default().with_auth_bytes(token.into());
        let body = self.round_trip(&request, version).await?;
        let response: SaslAuthenticateResponse = self.decode(&body, version)?;
        if let Some(error) = ResponseError::try_from_code(response.error_code) {
            let message = match response.error_message.as_deref() {
                Some(m) if !m.is_empty() => m.to_string(),
                _ => error.to_string(),
            };
            return Err(self.auth_error(mechanism, message));
        }
        Ok(response.auth_bytes.to_vec())
    }

    fn auth_error(&self, mechanism: SaslMechanism, message: String) -> WireError {
        WireError::Authentication {
            addr: self.addr.clone(),
            mechanism: mechanism.name(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moldau_security::test_pki::TestPki;

    fn props(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn plaintext_needs_nothing() {
        let security = WireSecurity::from_librdkafka(&props(&[("client.id", "x")])).unwrap();
        assert!(security.tls.is_none() && security.sasl.is_none());
    }

    #[test]
    fn an_unknown_security_protocol_is_refused() {
        let e = WireSecurity::from_librdkafka(&props(&[("security.protocol", "TLS")]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "security.protocol: TLS is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
        );
    }

    #[test]
    fn sasl_settings() {
        let login = WireSecurity::from_librdkafka(&props(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanisms", "SCRAM-SHA-256"),
            ("sasl.username", "alice"),
            ("sasl.password", "secret"),
        ]))
        .unwrap()
        .sasl
        .unwrap();
        assert_eq!(
            login.mechanism,
            SaslMechanism::Scram(ScramMechanism::Sha256)
        );
        assert!(!format!("{login:?}").contains("secret"));
        let e = WireSecurity::from_librdkafka(&props(&[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanism", "PLAIN"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("needs a user name and a password"), "{e}");
        let e = WireSecurity::from_librdkafka(&props(&[("security.protocol", "SASL_PLAINTEXT")]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("sasl.mechanism: GSSAPI"), "{e}");
    }

    #[test]
    fn tls_settings_from_librdkafka_names() {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::new();
        let ca = pki.write_ca(dir.path());
        let client = pki.write_leaf(dir.path(), "client", "client", &[]);
        let security = WireSecurity::from_librdkafka(&props(&[
            ("security.protocol", "SSL"),
            ("ssl.ca.location", ca.to_str().unwrap()),
            ("ssl.certificate.location", client.chain.to_str().unwrap()),
            ("ssl.key.location", client.key.to_str().unwrap()),
        ]))
        .unwrap();
        let tls = security.tls.unwrap();
        assert!(tls.client_auth_cert_resolver.has_certs());
        // A directory of certificates works too.
        WireSecurity::from_librdkafka(&props(&[
            ("security.protocol", "SSL"),
            ("ssl.ca.location", dir.path().to_str().unwrap()),
        ]))
        .unwrap();
        let e = WireSecurity::from_librdkafka(&props(&[
            ("security.protocol", "SSL"),
            ("ssl.ca.location", ca.to_str().unwrap()),
            ("ssl.key.location", client.key.to_str().unwrap()),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("together"), "{e}");
    }
}
