//! A worker's security settings, as Kafka Connect reads them:
//!
//! * Kafka client security: the worker's Java client keys (`security.protocol`, `sasl.*`,
//!   `ssl.*`) made into librdkafka properties by `moldau_security::client_properties`,
//!   the translation the `moldau` tools' `--command-config` uses. The top-level keys are
//!   the worker's own clients' (internal topics, group membership, cluster id); a
//!   connector's producers, consumers and admin clients start from them, then the worker's
//!   `producer.` / `consumer.` / `admin.` keys override them key by key, then the
//!   connector's `producer.override.` / `consumer.override.` / `admin.override.` keys
//!   (allowed by `connector.client.config.override.policy`). Kafka Connect gives a
//!   connector's producers and consumers only their prefixed keys; here a worker whose
//!   only security settings are top-level works too, and one that sets the prefixed keys
//!   (as Kafka Connect needs) gets exactly those. Anything the translation cannot act on
//!   is an error naming the key as the user wrote it (prefix included).
//! * The REST listener's TLS (`listeners=https://...`): Kafka Connect's
//!   `listeners.https.ssl.*` keys, or, when no `listeners.https.` key is set at all, the
//!   top-level `ssl.*` keys (Kafka's `valuesWithPrefixAllOrNothing`): the key store (needed),
//!   trust store, `ssl.client.auth` (none, requested, required), protocols and suites. The
//!   same settings make the client of the requests between workers (forwarding to the
//!   leader or to a task's worker): the trust store verifies the other worker, the key
//!   store answers a worker asking for a client certificate.

use std::collections::BTreeMap;
use std::sync::Arc;

use moldau_security::client_properties::{translate, Overrides};
use moldau_security::tls::{KeyStoreResolver, SslConfig, SslConfigError, SslProps};
use tokio_rustls::rustls;

use crate::config::Props;

/// Whether a Java client key is a security setting (translated, never passed on as is).
pub fn is_security_key(key: &str) -> bool {
    key == "security.protocol"
        || key == "security.providers"
        || key.starts_with("sasl.")
        || key.starts_with("ssl.")
}

/// Whether a librdkafka property is a security setting (what a translation sets).
fn is_librdkafka_security_key(key: &str) -> bool {
    key == "security.protocol"
        || key.starts_with("sasl.")
        || key.starts_with("ssl.")
        || key == "enable.sasl.oauthbearer.unsecure.jwt"
        || key == "enable.ssl.certificate.verification"
}

/// `props` without their security settings (librdkafka's names).
pub fn without_security(props: &Props) -> Props {
    props
        .iter()
        .filter(|(k, _)| !is_librdkafka_security_key(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `props` without the Java security keys (what is passed on to librdkafka as is).
pub fn non_security(props: &Props) -> Props {
    props
        .iter()
        .filter(|(k, _)| !is_security_key(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// One layer of Java client keys: the prefix the user wrote them with (`""`,
/// `producer.`, `producer.override.`, ...) and the keys, prefix stripped.
pub type Layer<'a> = (&'a str, &'a Props);

/// The librdkafka security properties of the layers' security keys, later layers winning
/// key by key. `client` names the client in errors ("the worker's producers").
pub fn client_security(layers: &[Layer<'_>], client: &str) -> Result<Props, String> {
    let mut java = BTreeMap::new();
    let mut origin = BTreeMap::new();
    for (prefix, props) in layers {
        for (k, v) in props.iter().filter(|(k, _)| is_security_key(k)) {
            java.insert(k.clone(), v.clone());
            origin.insert(k.clone(), format!("{prefix}{k}"));
        }
    }
    let translation = translate(&java, &Overrides::default()).map_err(|e| {
        let key = origin.get(&e.key).cloned().unwrap_or(e.key.clone());
        format!("{key}: {} (client security of {client})", e.message)
    })?;
    let sasl_ignored: Vec<String> = translation
        .ignored
        .iter()
        .filter(|k| k.starts_with("sasl."))
        .map(|k| origin.get(k).cloned().unwrap_or(k.clone()))
        .collect();
    if let (Some(protocol), false) = (
        translation.ignored_because_of_protocol,
        sasl_ignored.is_empty(),
    ) {
        tracing::warn!(
            "{client}: ignoring {} (not read with security.protocol={protocol})",
            sasl_ignored.join(", ")
        );
    }
    Ok(translation.properties)
}

/// The top-level Java security keys of the worker's properties.
pub fn top_level(originals: &Props) -> Props {
    originals
        .iter()
        .filter(|(k, _)| is_security_key(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The prefix of Kafka Connect's REST listener TLS keys.
pub const HTTPS_PREFIX: &str = "listeners.https.";

/// The TLS of an https REST listener and of the requests between workers.
#[derive(Clone)]
pub struct RestTls {
    /// The listener's rustls configuration.
    pub server: Arc<rustls::ServerConfig>,
    /// The client's settings for the requests between workers.
    pub client: ureq::tls::TlsConfig,
    /// Whether the client checks the other worker's host name (the key that says not).
    pub no_hostname_check: Option<String>,
}

/// The REST TLS settings from the worker's properties (`listeners.https.ssl.*`, or the
/// top-level `ssl.*` when no `listeners.https.` key is set). An https listener needs a
/// key store; every error names the key.
pub fn rest_tls(originals: &Props) -> Result<RestTls, String> {
    let prefixed: Props = originals
        .iter()
        .filter(|(k, _)| k.starts_with(HTTPS_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (keys, prefix) = if prefixed.is_empty() {
        (
            originals
                .iter()
                .filter(|(k, _)| k.starts_with("ssl."))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Props>(),
            "",
        )
    } else {
        (prefixed, HTTPS_PREFIX)
    };
    if let Some(k) = keys.keys().find(|k| !k[prefix.len()..].starts_with("ssl.")) {
        return Err(format!(
            "{k}: unknown setting of the https listener (Kafka Connect's are {HTTPS_PREFIX}ssl.*)"
        ));
    }
    let named = |e: SslConfigError| {
        let key = if e.key.starts_with(prefix) {
            e.key
        } else {
            format!("{prefix}{}", e.key)
        };
        format!("{key}: {}", e.message)
    };
    let config = SslConfig::load(&SslProps::new(&keys, prefix)).map_err(named)?;
    let Some(key_store) = &config.key_store else {
        return Err(format!(
            "{prefix}ssl.keystore.location: an https listener needs a key store (Kafka \
             Connect's {HTTPS_PREFIX}ssl.keystore.* keys, or ssl.keystore.*)"
        ));
    };
    let resolver = KeyStoreResolver::new(key_store).map_err(named)?;
    let server = config.server_config(resolver).map_err(named)?;
    let client = client_tls(&config, prefix)?;
    let no_hostname_check = (!config.endpoint_identification)
        .then(|| format!("{prefix}ssl.endpoint.identification.algorithm"));
    Ok(RestTls {
        server,
        client,
        no_hostname_check,
    })
}

/// ureq's TLS settings from the loaded `ssl.*` settings: the trust store (else the
/// WebPKI roots, as Java's default trust store), the key store as client certificate.
fn client_tls(config: &SslConfig, prefix: &str) -> Result<ureq::tls::TlsConfig, String> {
    use base64::Engine as _;
    use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};
    let mut builder = TlsConfig::builder().provider(TlsProvider::Rustls);
    builder = match &config.trust_store {
        Some(certs) => {
            let certs: Vec<Certificate<'static>> = certs
                .iter()
                .map(|c| Certificate::from_der(c.as_ref()).to_owned())
                .collect();
            builder.root_certs(RootCerts::new_with_certs(&certs))
        }
        None => builder.root_certs(RootCerts::WebPki),
    };
    if let Some(key_store) = &config.key_store {
        // ureq takes a key as DER only with a kind it does not export: hand it PEM.
        let label = match &key_store.key {
            rustls::pki_types::PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
            rustls::pki_types::PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
            rustls::pki_types::PrivateKeyDer::Pkcs8(_) => "PRIVATE KEY",
            _ => {
                return Err(format!(
                    "{prefix}ssl.keystore.location: unsupported private key type"
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
        let key = PrivateKey::from_pem(pem.as_bytes())
            .map_err(|e| format!("{prefix}ssl.keystore.location: {e}"))?;
        let chain: Vec<Certificate<'static>> = key_store
            .chain
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        builder = builder.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    Ok(builder.build())
}

/// The agent of the requests between workers: https with `tls` when given.
pub fn forwarding_agent(tls: Option<&RestTls>) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(90)));
    if let Some(tls) = tls {
        config = config.tls_config(tls.client.clone());
    }
    config.build().into()
}
