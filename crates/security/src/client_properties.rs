//! Java client properties (`security.protocol`, `sasl.*`, `ssl.*`, ...), as Kafka's
//! clients and tools take them, made into librdkafka properties: one translation for every
//! Moldau client that reads Java keys (the CLI's `--command-config`, a Connect worker's
//! client settings).
//!
//! How the Java keys map (see [`translate`]):
//! - `security.protocol`: the same values (`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`,
//!   `SASL_SSL`). `ssl.*` keys are read only with SSL or SASL_SSL and `sasl.*` keys only
//!   with a SASL protocol (otherwise Java ignores them, and so does this: they are listed
//!   as ignored).
//! - `ssl.*`: read as Kafka reads them, by [`SslConfig`] (PEM, PKCS12 and JKS-typed PKCS12
//!   trust and key stores, inline PEM, `ssl.key.password`). librdkafka reads no Java store,
//!   so the trust store's certificates become `ssl.ca.pem` and the key store's chain and
//!   private key `ssl.certificate.pem` and `ssl.key.pem`.
//!   `ssl.endpoint.identification.algorithm` keeps its name (`https`, or empty: `none`).
//!   `ssl.cipher.suites` and `ssl.enabled.protocols` other than Kafka's default (TLSv1.2
//!   and TLSv1.3) are refused: librdkafka cannot restrict them alike. Java-only keys with
//!   a value other than their default (`ssl.provider`, `ssl.engine.factory.class`, ...)
//!   and unknown `ssl.` keys are refused by [`SslConfig`].
//! - `sasl.mechanism`: the same (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER;
//!   GSSAPI, Java's default, is refused). `sasl.jaas.config`: `PlainLoginModule` and
//!   `ScramLoginModule` give `sasl.username` / `sasl.password`; the unsecured options of
//!   `OAuthBearerLoginModule` give librdkafka's `sasl.oauthbearer.config` (principal,
//!   scope, lifetime, extensions) with `enable.sasl.oauthbearer.unsecure.jwt`; any other
//!   option of it (a token endpoint, OIDC) is refused. Keys that plug in Java code or fetch
//!   tokens (`sasl.login.callback.handler.class`, `sasl.client.callback.handler.class`,
//!   `sasl.login.class`, `sasl.oauthbearer.token.endpoint.url`, ...) and unknown `sasl.`
//!   keys are refused; Kerberos, login-refresh and token-validation tunings are ignored.
//! - `security.providers` is refused.
//! - Keys librdkafka has under the same name and meaning (`client.id`, `client.rack`,
//!   `request.timeout.ms`, `acks`, `linger.ms`, ... see `SAME_IN_LIBRDKAFKA`) are passed
//!   on; every other key (serializers, interceptors, metrics, `bootstrap.servers`, ...) is
//!   listed as ignored, for the caller to warn of, as Kafka's clients warn of configs
//!   "supplied but not used".
//!
//! Errors are [`TranslateError`]s naming the key at fault.

use std::collections::BTreeMap;

use base64::Engine as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::jaas::{
    parse_jaas_config, JaasEntry, OAUTHBEARER_LOGIN_MODULE, PLAIN_LOGIN_MODULE, SCRAM_LOGIN_MODULE,
};
use crate::tls::{SslConfig, SslProps};

/// Kafka's `security.protocol`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    /// Case-insensitive, as Java's `SecurityProtocol.forName` (and librdkafka).
    pub fn parse(value: &str) -> Option<SecurityProtocol> {
        match value.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    pub fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    pub fn sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// Java client properties that make no librdkafka properties: `key` is the property at
/// fault (as the translation saw it, without a caller's prefix), `message` what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct TranslateError {
    pub key: String,
    pub message: String,
}

impl TranslateError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> TranslateError {
        TranslateError {
            key: key.into(),
            message: message.into(),
        }
    }
}

fn invalid_protocol(value: &str) -> TranslateError {
    TranslateError::new(
        "security.protocol",
        format!("{value} is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"),
    )
}

/// Java client keys that librdkafka has under the same name with the same meaning.
const SAME_IN_LIBRDKAFKA: &[&str] = &[
    "client.id",
    "client.rack",
    "client.dns.lookup",
    "request.timeout.ms",
    "socket.connection.setup.timeout.ms",
    "connections.max.idle.ms",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "retry.backoff.ms",
    "retry.backoff.max.ms",
    "metadata.max.age.ms",
    "acks",
    "linger.ms",
    "batch.size",
    "compression.type",
    "enable.idempotence",
    "max.in.flight.requests.per.connection",
    "retries",
    "delivery.timeout.ms",
    "transactional.id",
    "transaction.timeout.ms",
    "group.id",
    "group.instance.id",
    "group.protocol",
    "group.remote.assignor",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "auto.offset.reset",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "isolation.level",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "max.partition.fetch.bytes",
    "check.crcs",
    "allow.auto.create.topics",
];

/// `sasl.` keys that plug in Java code or fetch tokens: refused, as ignoring them would
/// authenticate otherwise than the file says.
const SASL_REFUSED: &[&str] = &[
    "sasl.login.callback.handler.class",
    "sasl.client.callback.handler.class",
    "sasl.login.class",
    "sasl.oauthbearer.token.endpoint.url",
    "sasl.oauthbearer.jwt.retriever.class",
    "sasl.oauthbearer.client.credentials.",
    "sasl.oauthbearer.assertion.",
];

/// `sasl.` keys that tune what Moldau's clients do not do (Kerberos, login refresh,
/// broker-side token validation): ignored with a warning.
const SASL_IGNORED: &[&str] = &[
    "sasl.kerberos.",
    "sasl.login.refresh.",
    "sasl.login.connect.timeout.ms",
    "sasl.login.read.timeout.ms",
    "sasl.login.retry.backoff.ms",
    "sasl.login.retry.backoff.max.ms",
    "sasl.oauthbearer.scope.claim.name",
    "sasl.oauthbearer.sub.claim.name",
    "sasl.oauthbearer.jwks.endpoint.",
    "sasl.oauthbearer.clock.skew.seconds",
    "sasl.oauthbearer.expected.audience",
    "sasl.oauthbearer.expected.issuer",
    "sasl.oauthbearer.header.urlencode",
    "sasl.oauthbearer.jwt.validator.class",
];

/// An entry ending in `.` names every key under it.
fn listed(list: &[&str], key: &str) -> bool {
    list.iter().any(|entry| {
        if entry.ends_with('.') {
            key.starts_with(entry)
        } else {
            key == *entry
        }
    })
}

/// What the caller says of the settings the translation depends on (the CLI's `-X`).
#[derive(Default)]
pub struct Overrides<'a> {
    /// `security.protocol` given beside the Java properties (it wins).
    pub protocol: Option<&'a str>,
    /// `sasl.mechanism` given beside the Java properties (it wins).
    pub mechanism: Option<&'a str>,
    /// How the caller's users give librdkafka's own properties (the CLI: `-X`), for the
    /// errors to point to it. `None`: they cannot, so a SASL login must come from
    /// `sasl.jaas.config`.
    pub librdkafka_flag: Option<&'a str>,
}

impl Overrides<'_> {
    /// " (librdkafka properties such as `example` go with -X)", or nothing.
    fn hint(&self, example: &str) -> String {
        match self.librdkafka_flag {
            Some(flag) => format!(" (librdkafka properties such as {example} go with {flag})"),
            None => String::new(),
        }
    }
}

/// A command config in librdkafka's terms.
#[derive(Debug)]
pub struct Translation {
    pub properties: BTreeMap<String, String>,
    /// Keys with no effect, for a warning.
    pub ignored: Vec<String>,
    /// Set when `ssl.*` or `sasl.*` keys were ignored because of the protocol.
    pub ignored_because_of_protocol: Option<&'static str>,
}

/// Translates Java client properties to librdkafka's. Errors name the key.
pub fn translate(
    java: &BTreeMap<String, String>,
    overrides: &Overrides<'_>,
) -> Result<Translation, TranslateError> {
    let file_protocol = match java.get("security.protocol") {
        None => None,
        Some(v) => Some(SecurityProtocol::parse(v).ok_or_else(|| invalid_protocol(v))?),
    };
    let protocol = match overrides.protocol {
        Some(v) => SecurityProtocol::parse(v).ok_or_else(|| invalid_protocol(v))?,
        None => file_protocol.unwrap_or(SecurityProtocol::Plaintext),
    };
    let mut out = BTreeMap::new();
    let mut ignored = Vec::new();
    let mut ignored_because_of_protocol = None;
    if let Some(p) = file_protocol {
        out.insert(
            "security.protocol".to_string(),
            p.name().to_ascii_lowercase(),
        );
    }
    for (key, value) in java {
        if key == "security.protocol" || key.starts_with("ssl.") || key.starts_with("sasl.") {
            continue; // below
        }
        if key == "security.providers" {
            return Err(TranslateError::new(
                key,
                "Java security providers have no meaning for moldau's clients (TLS is \
                 OpenSSL through librdkafka, or rustls); remove it",
            ));
        }
        if SAME_IN_LIBRDKAFKA.contains(&key.as_str()) {
            out.insert(key.clone(), value.clone());
        } else {
            ignored.push(key.clone());
        }
    }

    let ssl_keys: Vec<&String> = java.keys().filter(|k| k.starts_with("ssl.")).collect();
    if protocol.tls() {
        translate_ssl(java, overrides, &mut out)?;
    } else if !ssl_keys.is_empty() {
        ignored.extend(ssl_keys.into_iter().cloned());
        ignored_because_of_protocol = Some(protocol.name());
    }

    let sasl_keys: Vec<&String> = java.keys().filter(|k| k.starts_with("sasl.")).collect();
    if protocol.sasl() {
        for key in &sasl_keys {
            let key = key.as_str();
            if matches!(key, "sasl.mechanism" | "sasl.jaas.config") {
                continue;
            }
            if listed(SASL_REFUSED, key) {
                return Err(TranslateError::new(
                    key,
                    format!(
                        "not supported by moldau's clients (they authenticate with PLAIN, \
                         SCRAM or an unsecured OAUTHBEARER token from sasl.jaas.config{})",
                        match overrides.librdkafka_flag {
                            Some(flag) =>
                                format!("; librdkafka's own OAUTHBEARER settings go with {flag}"),
                            None => String::new(),
                        }
                    ),
                ));
            }
            if listed(SASL_IGNORED, key) {
                ignored.push(key.to_string());
            } else {
                return Err(TranslateError::new(
                    key,
                    format!("unknown sasl setting{}", overrides.hint("sasl.username")),
                ));
            }
        }
        translate_sasl(java, overrides, &mut out)?;
    } else if !sasl_keys.is_empty() {
        ignored.extend(sasl_keys.into_iter().cloned());
        ignored_because_of_protocol = Some(protocol.name());
    }
    ignored.sort();
    Ok(Translation {
        properties: out,
        ignored,
        ignored_because_of_protocol,
    })
}

fn translate_ssl(
    java: &BTreeMap<String, String>,
    overrides: &Overrides<'_>,
    out: &mut BTreeMap<String, String>,
) -> Result<(), TranslateError> {
    let set = |key: &str| java.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
    if set("ssl.cipher.suites").is_some() {
        return Err(TranslateError::new(
            "ssl.cipher.suites",
            "not supported by moldau's clients (librdkafka cannot restrict its suites \
             alike); remove it",
        ));
    }
    if let Some(protocols) = set("ssl.enabled.protocols") {
        let mut names: Vec<&str> = protocols
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        names.sort_unstable();
        names.dedup();
        if names != ["TLSv1.2", "TLSv1.3"] {
            return Err(TranslateError::new(
                "ssl.enabled.protocols",
                format!(
                    "{protocols} is not supported by moldau's clients, which offer TLSv1.2 \
                     and TLSv1.3 (Kafka's default); remove it"
                ),
            ));
        }
    }
    let config = SslConfig::load(&SslProps::new(java, "")).map_err(|e| {
        if e.message == "unknown ssl setting" {
            let message = format!("{}{}", e.message, overrides.hint("ssl.ca.location"));
            TranslateError::new(e.key, message)
        } else {
            TranslateError::new(e.key, e.message)
        }
    })?;
    if let Some(certs) = &config.trust_store {
        out.insert("ssl.ca.pem".to_string(), certificates_pem(certs));
    }
    if let Some(key_store) = &config.key_store {
        out.insert(
            "ssl.certificate.pem".to_string(),
            certificates_pem(&key_store.chain),
        );
        out.insert("ssl.key.pem".to_string(), private_key_pem(&key_store.key)?);
    }
    if java.contains_key("ssl.endpoint.identification.algorithm") {
        let algorithm = if config.endpoint_identification {
            "https"
        } else {
            "none"
        };
        out.insert(
            "ssl.endpoint.identification.algorithm".to_string(),
            algorithm.to_string(),
        );
    }
    Ok(())
}

fn translate_sasl(
    java: &BTreeMap<String, String>,
    overrides: &Overrides<'_>,
    out: &mut BTreeMap<String, String>,
) -> Result<(), TranslateError> {
    let jaas_error =
        |e: &dyn std::fmt::Display| TranslateError::new("sasl.jaas.config", e.to_string());
    let file_mechanism = java
        .get("sasl.mechanism")
        .map(|m| m.trim())
        .filter(|m| !m.is_empty());
    if let Some(m) = file_mechanism {
        out.insert("sasl.mechanism".to_string(), m.to_string());
    }
    let mechanism = overrides.mechanism.or(file_mechanism);
    let jaas = java
        .get("sasl.jaas.config")
        .map(|j| j.trim())
        .filter(|j| !j.is_empty());
    let parse = |text: &str| parse_jaas_config(text).map_err(|e| jaas_error(&e));
    match mechanism {
        None | Some("GSSAPI") => Err(TranslateError::new(
            "sasl.mechanism",
            format!(
                "{} is not supported by moldau's clients; set PLAIN, SCRAM-SHA-256, \
                 SCRAM-SHA-512 or OAUTHBEARER",
                if mechanism.is_none() {
                    "GSSAPI (Kafka's default when it is unset)"
                } else {
                    "GSSAPI"
                }
            ),
        )),
        Some(m @ ("PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512")) => {
            let Some(text) = jaas else {
                if overrides.librdkafka_flag.is_some() {
                    return Ok(()); // -X sasl.username and sasl.password, or librdkafka complains
                }
                return Err(TranslateError::new(
                    "sasl.jaas.config",
                    format!(
                        "not set; SASL {m} needs one: {} required username=\"...\" \
                         password=\"...\";",
                        if m == "PLAIN" {
                            PLAIN_LOGIN_MODULE
                        } else {
                            SCRAM_LOGIN_MODULE
                        }
                    ),
                ));
            };
            let entry = parse(text)?;
            let module = if m == "PLAIN" {
                PLAIN_LOGIN_MODULE
            } else {
                SCRAM_LOGIN_MODULE
            };
            let credentials = entry
                .client_credentials(module)
                .map_err(|e| jaas_error(&e))?;
            if entry
                .option("tokenauth")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            {
                return Err(TranslateError::new(
                    "sasl.jaas.config",
                    "tokenauth (delegation tokens) is not supported by moldau's clients",
                ));
            }
            out.insert("sasl.username".to_string(), credentials.username);
            out.insert("sasl.password".to_string(), credentials.password);
            Ok(())
        }
        Some("OAUTHBEARER") => {
            let Some(text) = jaas else {
                return Err(TranslateError::new(
                    "sasl.jaas.config",
                    format!(
                        "OAUTHBEARER needs an OAuthBearerLoginModule entry{}",
                        match overrides.librdkafka_flag {
                            Some(flag) => format!(
                                " (or {flag} sasl.oauthbearer.* properties instead of the file)"
                            ),
                            None => String::new(),
                        }
                    ),
                ));
            };
            let entry = parse(text)?;
            entry
                .require_login_module(OAUTHBEARER_LOGIN_MODULE)
                .map_err(|e| jaas_error(&e))?;
            out.insert(
                "sasl.oauthbearer.config".to_string(),
                unsecured_oauthbearer_config(&entry, overrides.librdkafka_flag)?,
            );
            out.insert(
                "enable.sasl.oauthbearer.unsecure.jwt".to_string(),
                "true".to_string(),
            );
            Ok(())
        }
        Some(other) => Err(TranslateError::new(
            "sasl.mechanism",
            format!(
                "{other} is not supported by moldau's clients; set PLAIN, SCRAM-SHA-256, \
                 SCRAM-SHA-512 or OAUTHBEARER"
            ),
        )),
    }
}

/// The options of Kafka's unsecured OAUTHBEARER login (`unsecuredLogin*`, KIP-255) as
/// librdkafka's `sasl.oauthbearer.config`: `principalClaimName`, `principal`,
/// `scopeClaimName`, `scope`, `lifeSeconds`, `extension_<name>`. Claims other than the
/// principal and the scope have no place there and are refused.
fn unsecured_oauthbearer_config(
    entry: &JaasEntry,
    librdkafka_flag: Option<&str>,
) -> Result<String, TranslateError> {
    let refuse = |what: String| Err(TranslateError::new("sasl.jaas.config", what));
    let mut principal_claim = "sub".to_string();
    let mut scope_claim = "scope".to_string();
    let mut lifetime = None;
    let mut strings = BTreeMap::new();
    let mut lists = BTreeMap::new();
    let mut extensions = BTreeMap::new();
    for (name, value) in &entry.options {
        if name == "unsecuredLoginPrincipalClaimName" {
            principal_claim = value.clone();
        } else if name == "unsecuredLoginScopeClaimName" {
            scope_claim = value.clone();
        } else if name == "unsecuredLoginLifetimeSeconds" {
            lifetime = Some(value.clone());
        } else if let Some(claim) = name.strip_prefix("unsecuredLoginStringClaim_") {
            strings.insert(claim.to_string(), value.clone());
        } else if let Some(claim) = name.strip_prefix("unsecuredLoginListClaim_") {
            lists.insert(claim.to_string(), value.clone());
        } else if let Some(extension) = name.strip_prefix("unsecuredLoginExtension_") {
            extensions.insert(extension.to_string(), value.clone());
        } else if name.starts_with("unsecuredLoginNumberClaim_") {
            return refuse(format!(
                "{name}: librdkafka's unsecured token carries no number claims"
            ));
        } else {
            return refuse(format!(
                "OAuthBearerLoginModule option {name} is not supported: only the unsecured \
                 options (unsecuredLogin*) translate{}",
                match librdkafka_flag {
                    Some(flag) => format!(
                        "; for a token endpoint (OIDC) use {flag} \
                         sasl.oauthbearer.method=oidc and librdkafka's sasl.oauthbearer.* \
                         properties"
                    ),
                    None => String::new(),
                }
            ));
        }
    }
    let Some(principal) = strings.remove(&principal_claim) else {
        return refuse(format!(
            "OAuthBearerLoginModule needs unsecuredLoginStringClaim_{principal_claim} (the \
             principal)"
        ));
    };
    // A list claim's first character is its delimiter (",a,b"); a string claim is one scope.
    let scope: Option<Vec<String>> =
        match (lists.remove(&scope_claim), strings.remove(&scope_claim)) {
            (Some(list), _) => {
                let mut chars = list.chars();
                let delimiter = chars.next();
                let rest: String = chars.collect();
                Some(match delimiter {
                    Some(d) => rest
                        .split(d)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                    None => Vec::new(),
                })
            }
            (None, Some(single)) => Some(vec![single]),
            (None, None) => None,
        };
    if let Some(claim) = strings.keys().chain(lists.keys()).next() {
        return refuse(format!(
            "claim {claim}: librdkafka's unsecured token carries only the principal and \
             scope claims"
        ));
    }
    let mut parts = vec![
        format!("principalClaimName={principal_claim}"),
        format!("principal={principal}"),
    ];
    if let Some(scope) = scope {
        parts.push(format!("scopeClaimName={scope_claim}"));
        parts.push(format!("scope={}", scope.join(",")));
    }
    if let Some(lifetime) = lifetime {
        parts.push(format!("lifeSeconds={lifetime}"));
    }
    for (name, value) in extensions {
        parts.push(format!("extension_{name}={value}"));
    }
    // librdkafka splits the value at blanks and each part at its first '='.
    if let Some(part) = parts.iter().find(|p| p.contains(char::is_whitespace)) {
        let name = part.split('=').next().unwrap_or_default();
        return refuse(format!(
            "{name}: librdkafka's sasl.oauthbearer.config cannot hold blanks"
        ));
    }
    Ok(parts.join(" "))
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn certificates_pem(certs: &[CertificateDer<'_>]) -> String {
    certs
        .iter()
        .map(|c| pem("CERTIFICATE", c.as_ref()))
        .collect()
}

fn private_key_pem(key: &PrivateKeyDer<'_>) -> Result<String, TranslateError> {
    let label = match key {
        PrivateKeyDer::Pkcs8(_) => "PRIVATE KEY",
        PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
        PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
        _ => {
            return Err(TranslateError::new(
                "ssl.keystore.location",
                "unsupported private key format",
            ))
        }
    };
    Ok(pem(label, key.secret_der()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_pki::TestPki;

    fn java(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ok(entries: &[(&str, &str)]) -> Translation {
        translate(&java(entries), &cli()).unwrap()
    }

    fn err(entries: &[(&str, &str)]) -> String {
        translate(&java(entries), &cli()).unwrap_err().to_string()
    }

    /// The CLI's overrides: none, librdkafka's properties with `-X`.
    fn cli() -> Overrides<'static> {
        Overrides {
            librdkafka_flag: Some("-X"),
            ..Overrides::default()
        }
    }

    const PLAIN_JAAS: &str = "org.apache.kafka.common.security.plain.PlainLoginModule \
        required username=\"alice\" password=\"alice-secret\";";

    #[test]
    fn sasl_plain_gives_username_and_password() {
        let t = ok(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.jaas.config", PLAIN_JAAS),
            ("client.id", "ops"),
            ("request.timeout.ms", "5000"),
            (
                "key.serializer",
                "org.apache.kafka.common.serialization.StringSerializer",
            ),
            ("bootstrap.servers", "elsewhere:9092"),
            ("sasl.kerberos.service.name", "kafka"),
        ]);
        let p = &t.properties;
        assert_eq!(p["security.protocol"], "sasl_plaintext");
        assert_eq!(p["sasl.mechanism"], "PLAIN");
        assert_eq!(p["sasl.username"], "alice");
        assert_eq!(p["sasl.password"], "alice-secret");
        assert_eq!(p["client.id"], "ops");
        assert_eq!(p["request.timeout.ms"], "5000");
        assert_eq!(p.len(), 6);
        assert_eq!(
            t.ignored,
            [
                "bootstrap.servers",
                "key.serializer",
                "sasl.kerberos.service.name"
            ]
        );
    }

    #[test]
    fn scram_needs_its_login_module() {
        let scram = "org.apache.kafka.common.security.scram.ScramLoginModule required \
                     username=\"bob\" password=\"b0b\";";
        let t = ok(&[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.jaas.config", scram),
        ]);
        assert_eq!(t.properties["sasl.username"], "bob");
        assert_eq!(t.properties["sasl.password"], "b0b");
        let e = err(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            ("sasl.jaas.config", PLAIN_JAAS),
        ]);
        assert!(e.starts_with("sasl.jaas.config: "), "{e}");
        assert!(e.contains("ScramLoginModule"), "{e}");
        // -X sasl.mechanism decides which module the JAAS entry must be.
        let t = translate(
            &java(&[
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "SCRAM-SHA-256"),
                ("sasl.jaas.config", PLAIN_JAAS),
            ]),
            &Overrides {
                protocol: None,
                mechanism: Some("PLAIN"),
                librdkafka_flag: Some("-X"),
            },
        )
        .unwrap();
        assert_eq!(t.properties["sasl.username"], "alice");
    }

    #[test]
    fn refused_keys_are_named() {
        let sasl = [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.jaas.config", PLAIN_JAAS),
        ];
        for (key, value) in [
            ("sasl.login.callback.handler.class", "com.example.Handler"),
            ("sasl.client.callback.handler.class", "com.example.Handler"),
            ("sasl.oauthbearer.token.endpoint.url", "https://idp/token"),
            ("sasl.username", "alice"),
        ] {
            let mut entries = sasl.to_vec();
            entries.push((key, value));
            // Refused before any trust store is needed.
            let e = translate(
                &java(&entries),
                &Overrides {
                    protocol: Some("SASL_PLAINTEXT"),
                    mechanism: None,
                    librdkafka_flag: Some("-X"),
                },
            )
            .unwrap_err()
            .to_string();
            assert!(e.starts_with(&format!("{key}: ")), "{e}");
        }
        let e = err(&[("security.providers", "com.example.Provider")]);
        assert!(e.starts_with("security.providers: "), "{e}");
        let e = err(&[("security.protocol", "TLS")]);
        assert!(e.starts_with("security.protocol: TLS is not"), "{e}");
        let e = err(&[("security.protocol", "SASL_PLAINTEXT")]);
        assert!(e.contains("GSSAPI (Kafka's default"), "{e}");
        let e = err(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "GSSAPI"),
        ]);
        assert!(e.starts_with("sasl.mechanism: GSSAPI"), "{e}");
        let e = err(&[("security.protocol", "SSL"), ("ssl.provider", "SunJSSE")]);
        assert!(e.starts_with("ssl.provider: "), "{e}");
        let e = err(&[("security.protocol", "SSL"), ("ssl.ca.location", "/x")]);
        assert!(e.starts_with("ssl.ca.location: unknown"), "{e}");
        let e = err(&[
            ("security.protocol", "SSL"),
            ("ssl.cipher.suites", "TLS_AES_128_GCM_SHA256"),
        ]);
        assert!(e.starts_with("ssl.cipher.suites: "), "{e}");
        let e = err(&[
            ("security.protocol", "SSL"),
            ("ssl.enabled.protocols", "TLSv1.3"),
        ]);
        assert!(e.starts_with("ssl.enabled.protocols: "), "{e}");
    }

    #[test]
    fn without_librdkafka_properties_a_login_needs_jaas() {
        // A caller whose users cannot give librdkafka's properties (a Connect worker): a
        // SASL login without sasl.jaas.config is an error, and no error points to -X.
        let none = Overrides::default();
        let e = translate(
            &java(&[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "SCRAM-SHA-256"),
            ]),
            &none,
        )
        .unwrap_err();
        assert_eq!(e.key, "sasl.jaas.config");
        assert!(e.message.contains("ScramLoginModule"), "{e}");
        for entries in [
            &[("security.protocol", "SSL"), ("ssl.ca.location", "/x")][..],
            &[
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "PLAIN"),
                ("sasl.jaas.config", PLAIN_JAAS),
                ("sasl.username", "alice"),
            ][..],
            &[
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "OAUTHBEARER"),
            ][..],
        ] {
            let e = translate(&java(entries), &none).unwrap_err();
            assert!(!e.to_string().contains("-X"), "{e}");
        }
    }

    #[test]
    fn security_keys_of_another_protocol_are_ignored() {
        let t = ok(&[
            ("ssl.truststore.location", "/does/not/exist.p12"),
            ("sasl.login.callback.handler.class", "com.example.Handler"),
        ]);
        assert!(t.properties.is_empty(), "{:?}", t.properties);
        assert_eq!(t.ignored.len(), 2);
        assert_eq!(t.ignored_because_of_protocol, Some("PLAINTEXT"));
        // -X security.protocol=SSL makes the file's trust store count.
        let e = translate(
            &java(&[("ssl.truststore.location", "/does/not/exist.p12")]),
            &Overrides {
                protocol: Some("ssl"),
                mechanism: None,
                librdkafka_flag: Some("-X"),
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("ssl.truststore.location: cannot read"), "{e}");
    }

    #[test]
    fn trust_and_key_stores_become_pem() {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::new();
        let ca = pki.write_ca(dir.path());
        let client = pki.write_leaf(dir.path(), "client", "client", &[]);
        let t = ok(&[
            ("security.protocol", "SSL"),
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.location", ca.to_str().unwrap()),
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.location", client.key_store.to_str().unwrap()),
            ("ssl.endpoint.identification.algorithm", ""),
            ("ssl.enabled.protocols", "TLSv1.3, TLSv1.2"),
        ]);
        let p = &t.properties;
        assert_eq!(p["security.protocol"], "ssl");
        assert_eq!(p["ssl.ca.pem"].trim(), pki.ca_pem.trim());
        let chain = std::fs::read_to_string(&client.chain).unwrap();
        assert_eq!(p["ssl.certificate.pem"].trim(), chain.trim());
        assert!(p["ssl.key.pem"].starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert_eq!(p["ssl.endpoint.identification.algorithm"], "none");
        assert!(t.ignored.is_empty());

        // Inline certificates (KIP-651) translate the same way; a wrong PKCS12 password
        // is an error naming the key.
        let t = ok(&[
            ("security.protocol", "SSL"),
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.certificates", &pki.ca_pem),
        ]);
        assert_eq!(t.properties["ssl.ca.pem"].trim(), pki.ca_pem.trim());
        let e = err(&[
            ("security.protocol", "SSL"),
            ("ssl.truststore.type", "PKCS12"),
            ("ssl.truststore.location", ca.to_str().unwrap()),
            ("ssl.truststore.password", "nope"),
        ]);
        assert!(e.starts_with("ssl.truststore.password: "), "{e}");
    }

    #[test]
    fn unsecured_oauthbearer_becomes_librdkafka_config() {
        let jaas = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule \
                    required unsecuredLoginStringClaim_sub=\"alice\" \
                    unsecuredLoginListClaim_scope=\",read,write\" \
                    unsecuredLoginLifetimeSeconds=\"600\" \
                    unsecuredLoginExtension_traceId=\"abc\";";
        let t = ok(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "OAUTHBEARER"),
            ("sasl.jaas.config", jaas),
        ]);
        assert_eq!(
            t.properties["sasl.oauthbearer.config"],
            "principalClaimName=sub principal=alice scopeClaimName=scope scope=read,write \
             lifeSeconds=600 extension_traceId=abc"
        );
        assert_eq!(t.properties["enable.sasl.oauthbearer.unsecure.jwt"], "true");
        let oidc = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule \
                    required clientId=\"app\" clientSecret=\"s\";";
        let e = err(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "OAUTHBEARER"),
            ("sasl.jaas.config", oidc),
        ]);
        assert!(e.contains("clientId is not supported"), "{e}");
    }
}
