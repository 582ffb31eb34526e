//! TLS from Kafka's `ssl.*` keys: key and trust stores (PEM files, inline PEM as KIP-651,
//! PKCS12 as keytool and openssl write them), `ssl.client.auth`, `ssl.enabled.protocols`,
//! `ssl.cipher.suites` and hostname verification, made into rustls server and client
//! configurations. Every key the code does not act on is an error naming it (fail closed).
//!
//! The server's certificate comes from a [`KeyStoreResolver`], so a key store changed at
//! run time (Kafka's dynamic `ssl.keystore.*` update) serves the next handshake.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme, SupportedProtocolVersion};

/// A configuration error, naming the key (as the user wrote it, prefix included).
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SslConfigError {
    pub key: String,
    pub message: String,
}

fn error(key: impl Into<String>, message: impl Into<String>) -> SslConfigError {
    SslConfigError {
        key: key.into(),
        message: message.into(),
    }
}

/// Kafka's `ssl.*` keys that Moldau knows; any other `ssl.` key is refused.
pub const SSL_KEYS: &[&str] = &[
    "ssl.protocol",
    "ssl.provider",
    "ssl.cipher.suites",
    "ssl.enabled.protocols",
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.keystore.key",
    "ssl.keystore.certificate.chain",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.certificates",
    "ssl.keymanager.algorithm",
    "ssl.trustmanager.algorithm",
    "ssl.endpoint.identification.algorithm",
    "ssl.secure.random.implementation",
    "ssl.engine.factory.class",
    "ssl.client.auth",
    "ssl.principal.mapping.rules",
    "ssl.allow.dn.changes",
    "ssl.allow.san.changes",
];

/// `ssl.client.auth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslClientAuth {
    None,
    Requested,
    Required,
}

/// A certificate chain and its private key.
#[derive(Debug)]
pub struct KeyStore {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for KeyStore {
    fn clone(&self) -> Self {
        KeyStore {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// The `ssl.*` settings of one listener (or of one client), resolved and loaded.
#[derive(Clone, Debug)]
pub struct SslConfig {
    pub key_store: Option<KeyStore>,
    pub trust_store: Option<Vec<CertificateDer<'static>>>,
    pub client_auth: SslClientAuth,
    pub protocol_versions: Vec<&'static SupportedProtocolVersion>,
    /// `None`: every suite of the provider.
    pub cipher_suites: Option<Vec<rustls::SupportedCipherSuite>>,
    /// `ssl.endpoint.identification.algorithm=https` (the default): a client checks the
    /// server's certificate names the host it connected to.
    pub endpoint_identification: bool,
    /// `ssl.principal.mapping.rules`, unparsed (the principal module parses it).
    pub principal_mapping_rules: String,
    /// `ssl.allow.dn.changes` / `ssl.allow.san.changes`: a dynamic key store update may
    /// change the certificate's subject / alternative names.
    pub allow_dn_changes: bool,
    pub allow_san_changes: bool,
}

/// Looks keys up as Kafka does for a listener: `<prefix><key>` first (`listener.name.x.`),
/// then `<key>`; errors name the key that held the value.
pub struct SslProps<'a> {
    props: &'a BTreeMap<String, String>,
    prefix: String,
}

impl<'a> SslProps<'a> {
    /// `prefix` is `listener.name.<name lower case>.` for a listener, empty for a client.
    pub fn new(props: &'a BTreeMap<String, String>, prefix: impl Into<String>) -> Self {
        SslProps {
            props,
            prefix: prefix.into(),
        }
    }

    /// The value and the key that held it.
    fn get(&self, key: &str) -> Option<(String, &'a str)> {
        let prefixed = format!("{}{key}", self.prefix);
        if !self.prefix.is_empty() {
            if let Some(v) = self.props.get(&prefixed) {
                return Some((prefixed, v.as_str()));
            }
        }
        self.props.get(key).map(|v| (key.to_string(), v.as_str()))
    }

    /// A non-empty value (Kafka treats an empty password or path as unset).
    fn get_set(&self, key: &str) -> Option<(String, &'a str)> {
        self.get(key).filter(|(_, v)| !v.trim().is_empty())
    }

    /// The first `ssl.` key (with this prefix or none) that Moldau does not know.
    pub fn unknown_key(&self) -> Option<String> {
        self.props.keys().find_map(|k| {
            let setting = if !self.prefix.is_empty() && k.starts_with(&self.prefix) {
                &k[self.prefix.len()..]
            } else {
                k.as_str()
            };
            (setting.starts_with("ssl.") && !SSL_KEYS.contains(&setting)).then(|| k.clone())
        })
    }
}

/// ring, the one crypto provider of the build. rustls 0.23.48 deprecates it for lacking
/// post-quantum key exchange, which no Kafka client offers today; aws-lc-rs would add a
/// C/cmake build for nothing a Kafka peer uses.
#[allow(deprecated)]
fn ring_provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The provider with the suites `ssl.cipher.suites` leaves.
fn provider(cipher_suites: &Option<Vec<rustls::SupportedCipherSuite>>) -> CryptoProvider {
    let mut provider = ring_provider();
    if let Some(suites) = cipher_suites {
        provider.cipher_suites = suites.clone();
    }
    provider
}

/// Java's name of a suite (`TLS_AES_128_GCM_SHA256`; rustls says `TLS13_...`).
fn java_suite_name(suite: &rustls::SupportedCipherSuite) -> String {
    let name = suite.suite().as_str().unwrap_or("unknown");
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name.to_string(),
    }
}

fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

impl SslConfig {
    /// Reads and loads the `ssl.*` settings (key and trust store files included).
    pub fn load(props: &SslProps<'_>) -> Result<SslConfig, SslConfigError> {
        if let Some(key) = props.unknown_key() {
            return Err(error(key, "unknown ssl setting"));
        }
        // Settings of Java's TLS stack with no counterpart here: only their defaults.
        for (key, allowed) in [
            ("ssl.provider", &[][..]),
            ("ssl.engine.factory.class", &[][..]),
            ("ssl.secure.random.implementation", &[][..]),
            (
                "ssl.keymanager.algorithm",
                &["SunX509", "PKIX", "NewSunX509"][..],
            ),
            ("ssl.trustmanager.algorithm", &["PKIX", "SunX509"][..]),
        ] {
            if let Some((k, v)) = props.get_set(key) {
                if !allowed.iter().any(|a| a.eq_ignore_ascii_case(v.trim())) {
                    return Err(error(
                        k,
                        format!("{v} is not supported (Moldau's TLS is rustls; leave it unset)"),
                    ));
                }
            }
        }
        let flag = |key: &str| -> Result<bool, SslConfigError> {
            match props.get_set(key) {
                None => Ok(false),
                Some((k, v)) => match v.trim().to_ascii_lowercase().as_str() {
                    "true" => Ok(true),
                    "false" => Ok(false),
                    _ => Err(error(k, format!("{v} is not a boolean"))),
                },
            }
        };
        let allow_dn_changes = flag("ssl.allow.dn.changes")?;
        let allow_san_changes = flag("ssl.allow.san.changes")?;
        if let Some((k, v)) = props.get_set("ssl.protocol") {
            if !matches!(v.trim(), "TLSv1.3" | "TLSv1.2" | "TLS") {
                return Err(error(
                    k,
                    format!("{v} is not supported (TLSv1.2, TLSv1.3 or TLS)"),
                ));
            }
        }
        let protocol_versions = protocol_versions(props)?;
        let cipher_suites = cipher_suites(props)?;
        let client_auth = match props.get_set("ssl.client.auth") {
            None => SslClientAuth::None,
            Some((k, v)) => match v.trim().to_ascii_lowercase().as_str() {
                "none" => SslClientAuth::None,
                "requested" => SslClientAuth::Requested,
                "required" => SslClientAuth::Required,
                _ => {
                    return Err(error(
                        k,
                        format!("{v} is not one of none, requested, required"),
                    ))
                }
            },
        };
        let endpoint_identification = match props.get("ssl.endpoint.identification.algorithm") {
            None => true,
            Some((k, v)) => match v.trim().to_ascii_lowercase().as_str() {
                "" => false,
                "https" => true,
                _ => return Err(error(k, format!("{v} is not supported (https or empty)"))),
            },
        };
        let principal_mapping_rules = props
            .get_set("ssl.principal.mapping.rules")
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| "DEFAULT".to_string());
        Ok(SslConfig {
            key_store: load_key_store(props)?,
            trust_store: load_trust_store(props)?,
            client_auth,
            protocol_versions,
            cipher_suites,
            endpoint_identification,
            principal_mapping_rules,
            allow_dn_changes,
            allow_san_changes,
        })
    }

    /// The server side of a listener: needs a key store; a trust store if clients
    /// authenticate. `key_key` names the key store setting in errors.
    pub fn server_config(
        &self,
        resolver: Arc<KeyStoreResolver>,
    ) -> Result<Arc<rustls::ServerConfig>, SslConfigError> {
        let provider = Arc::new(provider(&self.cipher_suites));
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&self.protocol_versions)
            .map_err(|e| error("ssl.enabled.protocols", e.to_string()))?;
        let builder = match self.client_auth {
            SslClientAuth::None => builder.with_no_client_auth(),
            auth => {
                let roots = self.root_store("ssl.client.auth")?;
                let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
                let verifier = if auth == SslClientAuth::Requested {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| error("ssl.truststore.location", e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        Ok(Arc::new(builder.with_cert_resolver(resolver)))
    }

    /// The client side (inter-broker, controller and CLI connections): the trust store
    /// verifies the server, the key store (if any) answers a server asking for a client
    /// certificate.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, SslConfigError> {
        let provider = Arc::new(provider(&self.cipher_suites));
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&self.protocol_versions)
            .map_err(|e| error("ssl.enabled.protocols", e.to_string()))?;
        let roots = self.root_store("ssl.truststore.location")?;
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| error("ssl.truststore.location", e.to_string()))?;
        let builder = if self.endpoint_identification {
            builder.with_webpki_verifier(webpki)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnlyVerifier(webpki)))
        };
        let config = match &self.key_store {
            Some(ks) => builder
                .with_client_auth_cert(ks.chain.clone(), ks.key.clone_key())
                .map_err(|e| error("ssl.keystore.location", e.to_string()))?,
            None => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }

    fn root_store(&self, needed_by: &str) -> Result<Arc<RootCertStore>, SslConfigError> {
        let Some(certs) = &self.trust_store else {
            return Err(error(
                needed_by,
                "needs a trust store (ssl.truststore.location or ssl.truststore.certificates)",
            ));
        };
        let mut roots = RootCertStore::empty();
        for cert in certs {
            roots
                .add(cert.clone())
                .map_err(|e| error("ssl.truststore.location", format!("bad certificate: {e}")))?;
        }
        Ok(Arc::new(roots))
    }
}

fn protocol_versions(
    props: &SslProps<'_>,
) -> Result<Vec<&'static SupportedProtocolVersion>, SslConfigError> {
    let Some((key, value)) = props.get_set("ssl.enabled.protocols") else {
        return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
    };
    let mut versions: Vec<&'static SupportedProtocolVersion> = Vec::new();
    for name in split_list(value) {
        let version: &'static SupportedProtocolVersion = match name {
            "TLSv1.3" => &rustls::version::TLS13,
            "TLSv1.2" => &rustls::version::TLS12,
            _ => {
                return Err(error(
                    key,
                    format!("{name} is not supported (TLSv1.2 and TLSv1.3 are)"),
                ))
            }
        };
        if !versions.iter().any(|v| v.version == version.version) {
            versions.push(version);
        }
    }
    if versions.is_empty() {
        return Err(error(key, "no protocol enabled"));
    }
    Ok(versions)
}

fn cipher_suites(
    props: &SslProps<'_>,
) -> Result<Option<Vec<rustls::SupportedCipherSuite>>, SslConfigError> {
    let Some((key, value)) = props.get_set("ssl.cipher.suites") else {
        return Ok(None);
    };
    let available = ring_provider().cipher_suites;
    let mut suites = Vec::new();
    for name in split_list(value) {
        let Some(suite) = available.iter().find(|s| java_suite_name(s) == name) else {
            let known: Vec<String> = available.iter().map(java_suite_name).collect();
            return Err(error(
                key,
                format!("{name} is not supported (supported: {})", known.join(", ")),
            ));
        };
        suites.push(*suite);
    }
    if suites.is_empty() {
        return Ok(None);
    }
    Ok(Some(suites))
}

/// `ssl.keystore.type`: Kafka's default is JKS, and Java's JKS key store also reads PKCS12
/// files, so JKS means "PKCS12 unless the file is a real JKS".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StoreType {
    Pem,
    Pkcs12,
}

fn store_type(props: &SslProps<'_>, key: &str) -> Result<StoreType, SslConfigError> {
    match props.get_set(key) {
        None => Ok(StoreType::Pkcs12),
        Some((k, v)) => match v.trim().to_ascii_uppercase().as_str() {
            "PEM" => Ok(StoreType::Pem),
            "PKCS12" | "JKS" => Ok(StoreType::Pkcs12),
            _ => Err(error(
                k,
                format!("{v} is not supported (PKCS12, JKS or PEM)"),
            )),
        },
    }
}

fn read_file(key: &str, path: &str) -> Result<Vec<u8>, SslConfigError> {
    std::fs::read(path).map_err(|e| error(key, format!("cannot read {path}: {e}")))
}

/// A real JKS file (magic 0xFEEDFEED): not readable here.
fn refuse_jks(key: &str, path: &str, bytes: &[u8]) -> Result<(), SslConfigError> {
    if bytes.starts_with(&[0xfe, 0xed, 0xfe, 0xed]) {
        return Err(error(
            key,
            format!(
                "{path} is a JKS key store, which Moldau does not read; convert it with \
                 `keytool -importkeystore -srckeystore {path} -destkeystore NEW.p12 \
                 -deststoretype PKCS12` and set ssl.*.type=PKCS12"
            ),
        ));
    }
    Ok(())
}

fn load_key_store(props: &SslProps<'_>) -> Result<Option<KeyStore>, SslConfigError> {
    let store_type = store_type(props, "ssl.keystore.type")?;
    let inline_key = props.get_set("ssl.keystore.key");
    let inline_chain = props.get_set("ssl.keystore.certificate.chain");
    let location = props.get_set("ssl.keystore.location");
    let key_password = props.get_set("ssl.key.password");
    if inline_key.is_some() || inline_chain.is_some() {
        // KIP-651: key and chain inline, PEM only, no location.
        let (Some((key_key, key_pem)), Some((chain_key, chain_pem))) = (inline_key, inline_chain)
        else {
            return Err(error(
                "ssl.keystore.key",
                "ssl.keystore.key and ssl.keystore.certificate.chain go together",
            ));
        };
        if store_type != StoreType::Pem {
            return Err(error(key_key, "inline keys need ssl.keystore.type=PEM"));
        }
        if let Some((k, _)) = location {
            return Err(error(
                k,
                "set either ssl.keystore.location or ssl.keystore.key, not both",
            ));
        }
        let chain = pem_certificates(&chain_key, chain_pem.as_bytes())?;
        let key = pem_private_key(&key_key, key_pem.as_bytes(), key_password)?;
        return key_store(chain_key, chain, key).map(Some);
    }
    let Some((location_key, path)) = location else {
        return Ok(None);
    };
    let bytes = read_file(&location_key, path)?;
    match store_type {
        StoreType::Pem => {
            let chain = pem_certificates(&location_key, &bytes)?;
            let key = pem_private_key(&location_key, &bytes, key_password)?;
            key_store(location_key, chain, key).map(Some)
        }
        StoreType::Pkcs12 => {
            refuse_jks(&location_key, path, &bytes)?;
            let store_password = props.get("ssl.keystore.password");
            let mut passwords: Vec<&str> = Vec::new();
            passwords.extend(store_password.as_ref().map(|(_, p)| *p));
            passwords.extend(key_password.as_ref().map(|(_, p)| *p));
            if passwords.is_empty() {
                passwords.push("");
            }
            let mut last_error = None;
            for password in passwords {
                match p12_keystore::KeyStore::from_pkcs12(
                    &bytes,
                    password,
                    p12_keystore::Pkcs12ImportPolicy::Strict,
                ) {
                    Ok(store) => {
                        let Some((_, chain)) = store.private_key_chain() else {
                            return Err(error(
                                location_key,
                                format!("{path} holds no private key"),
                            ));
                        };
                        let certs = chain
                            .certs()
                            .iter()
                            .map(|c| CertificateDer::from(c.as_der().to_vec()))
                            .collect();
                        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                            chain.key().as_der().to_vec(),
                        ));
                        return key_store(location_key, certs, key).map(Some);
                    }
                    Err(e) => last_error = Some(e),
                }
            }
            let e = last_error.map(|e| e.to_string()).unwrap_or_default();
            Err(error(
                "ssl.keystore.password",
                format!("cannot open {path} (wrong password or not PKCS12): {e}"),
            ))
        }
    }
}

fn key_store(
    key: String,
    chain: Vec<CertificateDer<'static>>,
    private_key: PrivateKeyDer<'static>,
) -> Result<KeyStore, SslConfigError> {
    if chain.is_empty() {
        return Err(error(key, "no certificate"));
    }
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&private_key)
        .map_err(|e| error(&key, format!("unsupported private key: {e}")))?;
    CertifiedKey::new(chain.clone(), signing_key)
        .keys_match()
        .map_err(|e| {
            error(
                &key,
                format!("the private key does not match the certificate: {e}"),
            )
        })?;
    Ok(KeyStore {
        chain,
        key: private_key,
    })
}

fn pem_certificates(key: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, SslConfigError> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(key, format!("bad PEM certificate: {e}")))
}

/// The private key of a PEM key store: PKCS#8 (encrypted with `ssl.key.password`, as Kafka
/// requires for a password) or, unencrypted, PKCS#1 / SEC1 as well.
fn pem_private_key(
    key: &str,
    pem: &[u8],
    password: Option<(String, &str)>,
) -> Result<PrivateKeyDer<'static>, SslConfigError> {
    use rustls::pki_types::pem::SectionKind;
    for section in <(SectionKind, Vec<u8>) as PemObject>::pem_slice_iter(pem) {
        let (kind, der) = section.map_err(|e| error(key, format!("bad PEM: {e}")))?;
        if matches!(
            kind,
            SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey
        ) {
            if let Some((k, _)) = password {
                return Err(error(
                    k,
                    "the PEM private key is not encrypted (Kafka needs an ENCRYPTED \
                     PRIVATE KEY when ssl.key.password is set)",
                ));
            }
            return PrivateKeyDer::try_from(der)
                .map_err(|e| error(key, format!("bad private key: {e}")));
        }
    }
    // rustls' PEM reader skips the ENCRYPTED PRIVATE KEY label: find it by its armour.
    let encrypted = encrypted_pem_key(pem).map_err(|m| error(key, m))?;
    let Some(der) = encrypted else {
        return Err(error(key, "no private key in the PEM"));
    };
    let Some((password_key, password)) = password else {
        return Err(error(
            key,
            "the PEM private key is encrypted: set ssl.key.password",
        ));
    };
    let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der.as_slice())
        .map_err(|e| error(key, format!("bad encrypted private key: {e}")))?;
    let document = info
        .decrypt(password)
        .map_err(|_| error(password_key, "wrong password for the encrypted private key"))?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        document.as_bytes().to_vec(),
    )))
}

/// The DER of the first `ENCRYPTED PRIVATE KEY` block, if any.
fn encrypted_pem_key(pem: &[u8]) -> Result<Option<Vec<u8>>, String> {
    use base64::Engine;
    const BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";
    let text = String::from_utf8_lossy(pem);
    let Some(start) = text.find(BEGIN) else {
        return Ok(None);
    };
    let body = &text[start + BEGIN.len()..];
    let Some(end) = body.find(END) else {
        return Err("unterminated ENCRYPTED PRIVATE KEY".into());
    };
    let b64: String = body[..end].split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map(Some)
        .map_err(|e| format!("bad ENCRYPTED PRIVATE KEY: {e}"))
}

fn load_trust_store(
    props: &SslProps<'_>,
) -> Result<Option<Vec<CertificateDer<'static>>>, SslConfigError> {
    let store_type = store_type(props, "ssl.truststore.type")?;
    let inline = props.get_set("ssl.truststore.certificates");
    let location = props.get_set("ssl.truststore.location");
    if let Some((key, pem)) = inline {
        if store_type != StoreType::Pem {
            return Err(error(
                key,
                "inline certificates need ssl.truststore.type=PEM",
            ));
        }
        if let Some((k, _)) = location {
            return Err(error(
                k,
                "set either ssl.truststore.location or ssl.truststore.certificates, not both",
            ));
        }
        return non_empty_trust(&key, pem_certificates(&key, pem.as_bytes())?).map(Some);
    }
    let Some((key, path)) = location else {
        return Ok(None);
    };
    let bytes = read_file(&key, path)?;
    let certs = match store_type {
        StoreType::Pem => pem_certificates(&key, &bytes)?,
        StoreType::Pkcs12 => {
            refuse_jks(&key, path, &bytes)?;
            let password = props
                .get("ssl.truststore.password")
                .map(|(_, p)| p)
                .unwrap_or("");
            let store = p12_keystore::KeyStore::from_pkcs12(
                &bytes,
                password,
                p12_keystore::Pkcs12ImportPolicy::Relaxed,
            )
            .map_err(|e| {
                error(
                    "ssl.truststore.password",
                    format!("cannot open {path} (wrong password or not PKCS12): {e}"),
                )
            })?;
            let mut certs = Vec::new();
            for (_, entry) in store.entries() {
                match entry {
                    p12_keystore::KeyStoreEntry::Certificate(c) => {
                        certs.push(CertificateDer::from(c.as_der().to_vec()))
                    }
                    p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) => certs.extend(
                        chain
                            .certs()
                            .iter()
                            .map(|c| CertificateDer::from(c.as_der().to_vec())),
                    ),
                    p12_keystore::KeyStoreEntry::Secret(_) => {}
                }
            }
            certs
        }
    };
    non_empty_trust(&key, certs).map(Some)
}

fn non_empty_trust(
    key: &str,
    certs: Vec<CertificateDer<'static>>,
) -> Result<Vec<CertificateDer<'static>>, SslConfigError> {
    if certs.is_empty() {
        return Err(error(key, "the trust store holds no certificate"));
    }
    Ok(certs)
}

/// The subject alternative names of a certificate (as `DNS:name`, `IP:addr`, ...), for the
/// dynamic key store update's check that they did not change (`ssl.allow.san.changes`).
pub fn subject_alt_names(certificate_der: &[u8]) -> Result<Vec<String>, String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(certificate_der).map_err(|e| e.to_string())?;
    let mut names: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext
            .value
            .general_names
            .iter()
            .map(|name| format!("{name}"))
            .collect(),
        Ok(None) => Vec::new(),
        Err(e) => return Err(e.to_string()),
    };
    names.sort();
    Ok(names)
}

/// The server certificate of a listener; replacing it serves the next handshake.
#[derive(Debug)]
pub struct KeyStoreResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl KeyStoreResolver {
    pub fn new(key_store: &KeyStore) -> Result<Arc<KeyStoreResolver>, SslConfigError> {
        Ok(Arc::new(KeyStoreResolver {
            current: RwLock::new(certified_key(key_store)?),
        }))
    }

    /// Serves `key_store` from the next handshake on.
    pub fn replace(&self, key_store: &KeyStore) -> Result<(), SslConfigError> {
        let key = certified_key(key_store)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = key;
        Ok(())
    }

    /// The end-entity certificate served now.
    pub fn certificate(&self) -> CertificateDer<'static> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current.cert[0].clone()
    }
}

fn certified_key(key_store: &KeyStore) -> Result<Arc<CertifiedKey>, SslConfigError> {
    let signing_key =
        rustls::crypto::ring::sign::any_supported_type(&key_store.key).map_err(|e| {
            error(
                "ssl.keystore.location",
                format!("unsupported private key: {e}"),
            )
        })?;
    Ok(Arc::new(CertifiedKey::new(
        key_store.chain.clone(),
        signing_key,
    )))
}

impl ResolvesServerCert for KeyStoreResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

/// `ssl.endpoint.identification.algorithm=` (empty): the chain is verified, the host name
/// is not, as Kafka does then.
#[derive(Debug)]
struct ChainOnlyVerifier(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_pki::TestPki;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load(pairs: &[(&str, &str)]) -> Result<SslConfig, SslConfigError> {
        let p = props(pairs);
        SslConfig::load(&SslProps::new(&p, "listener.name.ssl."))
    }

    /// Runs a handshake in memory; `Ok` with the client certificate the server saw.
    fn handshake(
        server: &SslConfig,
        client: &SslConfig,
        host: &str,
    ) -> Result<Option<CertificateDer<'static>>, rustls::Error> {
        let resolver = KeyStoreResolver::new(server.key_store.as_ref().unwrap()).unwrap();
        let mut s = rustls::ServerConnection::new(server.server_config(resolver).unwrap())?;
        let name = ServerName::try_from(host.to_string()).unwrap();
        let mut c = rustls::ClientConnection::new(client.client_config().unwrap(), name)?;
        for _ in 0..10 {
            let mut buf = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut buf).unwrap();
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                s.read_tls(&mut rd).unwrap();
            }
            s.process_new_packets()?;
            let mut buf = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut buf).unwrap();
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                c.read_tls(&mut rd).unwrap();
            }
            c.process_new_packets()?;
            if !s.is_handshaking() && !c.is_handshaking() {
                return Ok(s.peer_certificates().and_then(|c| c.first().cloned()));
            }
        }
        panic!("handshake did not finish");
    }

    fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> String {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    }

    #[test]
    fn pem_file_key_store_and_inline_trust_store_shake_hands() {
        let dir = tempfile_dir();
        let pki = TestPki::new();
        let (chain, key, _) = pki.leaf_pem("broker", &["localhost", "127.0.0.1"]);
        let ks = write(&dir, "broker.pem", format!("{key}{chain}").as_bytes());
        let server = load(&[
            ("ssl.keystore.type", "PEM"),
            ("listener.name.ssl.ssl.keystore.location", &ks),
        ])
        .unwrap();
        let client = load(&[
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.certificates", &pki.ca_pem),
        ])
        .unwrap();
        assert_eq!(handshake(&server, &client, "localhost").unwrap(), None);
        assert_eq!(handshake(&server, &client, "127.0.0.1").unwrap(), None);
        // Hostname verification is on by default ...
        let err = handshake(&server, &client, "elsewhere.example").unwrap_err();
        assert!(err.to_string().contains("not valid for name"), "{err}");
        // ... and off with an empty ssl.endpoint.identification.algorithm.
        let lax = load(&[
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.certificates", &pki.ca_pem),
            ("ssl.endpoint.identification.algorithm", ""),
        ])
        .unwrap();
        handshake(&server, &lax, "elsewhere.example").unwrap();
        // A client trusting another CA refuses the server.
        let other = TestPki::new();
        let stranger = load(&[
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.certificates", &other.ca_pem),
        ])
        .unwrap();
        assert!(handshake(&server, &stranger, "localhost").is_err());
    }

    #[test]
    fn client_auth_required_and_requested() {
        let pki = TestPki::new();
        let (chain, key, _) = pki.leaf_pem("broker", &["localhost"]);
        let (client_chain, client_key, _) = pki.leaf_pem("alice", &[]);
        let server_with = |auth: &str| {
            load(&[
                ("ssl.keystore.type", "PEM"),
                ("ssl.keystore.key", &key),
                ("ssl.keystore.certificate.chain", &chain),
                ("ssl.truststore.type", "PEM"),
                ("ssl.truststore.certificates", &pki.ca_pem),
                ("ssl.client.auth", auth),
            ])
            .unwrap()
        };
        let anonymous = load(&[
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.certificates", &pki.ca_pem),
        ])
        .unwrap();
        let alice = load(&[
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.certificates", &pki.ca_pem),
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.key", &client_key),
            ("ssl.keystore.certificate.chain", &client_chain),
        ])
        .unwrap();
        let required = server_with("required");
        assert!(handshake(&required, &anonymous, "localhost").is_err());
        let seen = handshake(&required, &alice, "localhost").unwrap();
        assert!(seen.is_some());
        let requested = server_with("requested");
        assert_eq!(
            handshake(&requested, &anonymous, "localhost").unwrap(),
            None
        );
        assert!(handshake(&requested, &alice, "localhost")
            .unwrap()
            .is_some());
        // A client certificate from an untrusted CA is refused even when only requested.
        let other = TestPki::new();
        let (m_chain, m_key, _) = other.leaf_pem("mallory", &[]);
        let mallory = load(&[
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.certificates", &pki.ca_pem),
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.key", &m_key),
            ("ssl.keystore.certificate.chain", &m_chain),
        ])
        .unwrap();
        assert!(handshake(&requested, &mallory, "localhost").is_err());
        // Clients are verified against a trust store: none is a startup error.
        let no_trust = load(&[
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.key", &key),
            ("ssl.keystore.certificate.chain", &chain),
            ("ssl.client.auth", "required"),
        ])
        .unwrap();
        let resolver = KeyStoreResolver::new(no_trust.key_store.as_ref().unwrap()).unwrap();
        let err = no_trust.server_config(resolver).unwrap_err();
        assert!(err.to_string().contains("trust store"), "{err}");
    }

    #[test]
    fn pkcs12_key_store_with_its_password() {
        let dir = tempfile_dir();
        let pki = TestPki::new();
        let (chain, _, key) = pki.leaf_pem("broker", &["localhost"]);
        let cert_der = CertificateDer::pem_slice_iter(chain.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        let ca_der = CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        let mut store = p12_keystore::KeyStore::new();
        let entry = p12_keystore::PrivateKeyChain::new(
            b"id".to_vec(),
            p12_keystore::PrivateKey::from_der(&key.serialize_der()).unwrap(),
            vec![
                p12_keystore::Certificate::from_der(&cert_der).unwrap(),
                p12_keystore::Certificate::from_der(&ca_der).unwrap(),
            ],
        );
        store.add_entry(
            "broker",
            p12_keystore::KeyStoreEntry::PrivateKeyChain(entry),
        );
        let p12 = write(&dir, "broker.p12", &store.writer("s3cret").write().unwrap());
        let mut trust = p12_keystore::KeyStore::new();
        trust.add_entry(
            "ca",
            p12_keystore::KeyStoreEntry::Certificate(
                p12_keystore::Certificate::from_der(&ca_der).unwrap(),
            ),
        );
        let trust = write(&dir, "trust.p12", &trust.writer("trustpw").write().unwrap());

        let server = load(&[
            ("ssl.keystore.type", "PKCS12"),
            ("ssl.keystore.location", &p12),
            ("ssl.keystore.password", "s3cret"),
            ("ssl.key.password", "s3cret"),
        ])
        .unwrap();
        assert_eq!(server.key_store.as_ref().unwrap().chain.len(), 2);
        // Kafka's default type, JKS, reads a PKCS12 file as Java does.
        let client = load(&[
            ("ssl.truststore.location", &trust),
            ("ssl.truststore.password", "trustpw"),
        ])
        .unwrap();
        handshake(&server, &client, "localhost").unwrap();

        let err = load(&[
            ("ssl.keystore.type", "PKCS12"),
            ("ssl.keystore.location", &p12),
            ("ssl.keystore.password", "wrong"),
        ])
        .unwrap_err();
        assert_eq!(err.key, "ssl.keystore.password");
        let jks = write(&dir, "old.jks", &[0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]);
        let err = load(&[("ssl.keystore.location", &jks)]).unwrap_err();
        assert!(err.to_string().contains("JKS"), "{err}");
        let err =
            load(&[("listener.name.ssl.ssl.keystore.location", "/no/such/file")]).unwrap_err();
        assert_eq!(err.key, "listener.name.ssl.ssl.keystore.location");
        assert!(err.message.contains("cannot read /no/such/file"), "{err}");
    }

    #[test]
    fn bad_settings_are_errors_naming_the_key() {
        let pki = TestPki::new();
        let (chain, key, _) = pki.leaf_pem("broker", &["localhost"]);
        let (_, other_key, _) = pki.leaf_pem("other", &["localhost"]);
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("ssl.enabled.protocols", "TLSv1.1")],
                "ssl.enabled.protocols",
            ),
            (
                &[("ssl.cipher.suites", "TLS_RSA_WITH_NULL_MD5")],
                "ssl.cipher.suites",
            ),
            (&[("ssl.client.auth", "maybe")], "ssl.client.auth"),
            (&[("ssl.keystore.type", "BKS")], "ssl.keystore.type"),
            (&[("ssl.provider", "SunJSSE")], "ssl.provider"),
            (
                &[("ssl.engine.factory.class", "x.Y")],
                "ssl.engine.factory.class",
            ),
            (
                &[("listener.name.ssl.ssl.bogus", "1")],
                "listener.name.ssl.ssl.bogus",
            ),
            (
                &[("ssl.endpoint.identification.algorithm", "ldap")],
                "ssl.endpoint.identification.algorithm",
            ),
            (
                &[
                    ("ssl.keystore.type", "PEM"),
                    ("ssl.keystore.key", &other_key),
                    ("ssl.keystore.certificate.chain", &chain),
                ],
                "ssl.keystore.certificate.chain",
            ),
            (
                &[("ssl.keystore.type", "PEM"), ("ssl.keystore.key", &key)],
                "ssl.keystore.key",
            ),
            (
                &[
                    ("ssl.keystore.type", "PEM"),
                    ("ssl.keystore.key", &key),
                    ("ssl.keystore.certificate.chain", &chain),
                    ("ssl.key.password", "pw"),
                ],
                "ssl.key.password",
            ),
            (
                &[
                    ("ssl.truststore.type", "PEM"),
                    ("ssl.truststore.certificates", "junk"),
                ],
                "ssl.truststore.certificates",
            ),
        ];
        for (pairs, key) in cases {
            let err = load(pairs).unwrap_err();
            assert_eq!(&err.key, key, "{pairs:?}: {err}");
        }
        // TLS 1.3 only, and one suite: still shakes hands.
        let only = load(&[
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.key", &key),
            ("ssl.keystore.certificate.chain", &chain),
            ("ssl.enabled.protocols", "TLSv1.3"),
            ("ssl.cipher.suites", "TLS_AES_256_GCM_SHA384"),
        ])
        .unwrap();
        let client = load(&[
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.certificates", &pki.ca_pem),
        ])
        .unwrap();
        handshake(&only, &client, "localhost").unwrap();
        let tls12_client = load(&[
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.certificates", &pki.ca_pem),
            ("ssl.enabled.protocols", "TLSv1.2"),
        ])
        .unwrap();
        assert!(handshake(&only, &tls12_client, "localhost").is_err());
    }

    #[test]
    fn replaced_key_store_serves_the_next_handshake() {
        let pki = TestPki::new();
        let (chain, key, _) = pki.leaf_pem("first", &["localhost"]);
        let (chain2, key2, _) = pki.leaf_pem("second", &["localhost"]);
        let first = load(&[
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.key", &key),
            ("ssl.keystore.certificate.chain", &chain),
        ])
        .unwrap();
        let second = load(&[
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.key", &key2),
            ("ssl.keystore.certificate.chain", &chain2),
        ])
        .unwrap();
        let resolver = KeyStoreResolver::new(first.key_store.as_ref().unwrap()).unwrap();
        assert_eq!(
            resolver.certificate(),
            first.key_store.as_ref().unwrap().chain[0]
        );
        resolver
            .replace(second.key_store.as_ref().unwrap())
            .unwrap();
        assert_eq!(
            resolver.certificate(),
            second.key_store.as_ref().unwrap().chain[0]
        );
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "moldau-tls-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
