//! `--command-config FILE`: a Java client properties file, as Kafka's tools take it, made
//! into librdkafka properties; `-X` properties come after it and win.
//!
//! The translation is `moldau_security::client_properties::translate`, shared with the
//! Connect worker; this module reads the file, warns of what it ignores and lets `-X` win.
//!
//! How the Java keys map (see `translate`):
//! - `security.protocol`: the same values (`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`,
//!   `SASL_SSL`). `ssl.*` keys are read only with SSL or SASL_SSL and `sasl.*` keys only
//!   with a SASL protocol (otherwise Java ignores them, and so does this: with a warning).
//! - `ssl.*`: read as Kafka reads them, by `moldau_security::tls::SslConfig` (PEM, PKCS12
//!   and JKS-typed PKCS12 trust and key stores, inline PEM, `ssl.key.password`). librdkafka
//!   reads no Java store, so the trust store's certificates become `ssl.ca.pem` and the key
//!   store's chain and private key `ssl.certificate.pem` and `ssl.key.pem`.
//!   `ssl.endpoint.identification.algorithm` keeps its name (`https`, or empty: `none`).
//!   `ssl.cipher.suites` and `ssl.enabled.protocols` other than Kafka's default (TLSv1.2
//!   and TLSv1.3) are refused: librdkafka cannot restrict them alike. Java-only keys with
//!   a value other than their default (`ssl.provider`, `ssl.engine.factory.class`, ...)
//!   and unknown `ssl.` keys are refused by `SslConfig`.
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
//!   on; every other key (serializers, interceptors, metrics, ...) is ignored with one
//!   warning naming them, as Kafka's clients warn of configs "supplied but not used".
//!   `bootstrap.servers` is ignored: `--bootstrap-server` names the brokers.
//!
//! A `-X` property replaces what the file gave for the same setting: `-X ssl.ca.location`
//! drops the file's trust store, any of `-X ssl.certificate.*`, `ssl.key.*` or
//! `ssl.keystore.*` drops its key store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::anyhow;
pub use moldau_security::client_properties::SecurityProtocol;
use moldau_security::client_properties::{translate, Overrides};

use super::java_properties;
use crate::args::{ConnectArgs, KeyValue};

/// `security.protocol` (librdkafka's name and values) from `properties`; PLAINTEXT when
/// unset.
pub fn security_protocol(properties: &ClientProperties) -> anyhow::Result<SecurityProtocol> {
    match properties.get("security.protocol") {
        None => Ok(SecurityProtocol::Plaintext),
        Some(v) => SecurityProtocol::parse(v).ok_or_else(|| {
            anyhow!("security.protocol: {v} is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
        }),
    }
}

/// librdkafka settings made of several keys: a `-X` key of one replaces every key of it
/// that the file gave (librdkafka refuses e.g. `ssl.ca.location` beside `ssl.ca.pem`).
const SETTINGS: &[&[&str]] = &[
    &["ssl.ca.location", "ssl.ca.pem"],
    &[
        "ssl.certificate.location",
        "ssl.certificate.pem",
        "ssl.key.location",
        "ssl.key.pem",
        "ssl.key.password",
        "ssl.keystore.location",
        "ssl.keystore.password",
    ],
    &["sasl.mechanism", "sasl.mechanisms"],
    &[
        "sasl.oauthbearer.method",
        "sasl.oauthbearer.config",
        "enable.sasl.oauthbearer.unsecure.jwt",
    ],
];

/// The client properties of one command: the command config translated to librdkafka's
/// names, then `-X`. Values hold secrets: never printed.
pub struct ClientProperties {
    entries: BTreeMap<String, String>,
    cli_keys: Vec<String>,
}

impl ClientProperties {
    /// Every property, librdkafka's names.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    /// The keys given with `-X`.
    pub fn cli_keys(&self) -> &[String] {
        &self.cli_keys
    }

    /// From a map, as if each entry had been given with `-X` (tests).
    #[cfg(test)]
    pub fn from_cli(entries: &[(&str, &str)]) -> ClientProperties {
        ClientProperties {
            entries: entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cli_keys: entries.iter().map(|(k, _)| k.to_string()).collect(),
        }
    }
}

type CacheKey = (Option<PathBuf>, Vec<KeyValue>);

/// The client properties of `conn`, read once per process (one command): the file's key
/// and trust stores are loaded, and its warnings printed, once.
pub fn client_properties(conn: &ConnectArgs) -> anyhow::Result<Arc<ClientProperties>> {
    static RESOLVED: Mutex<Vec<(CacheKey, Arc<ClientProperties>)>> = Mutex::new(Vec::new());
    let key = (conn.command_config.clone(), conn.client_properties.clone());
    let mut resolved = RESOLVED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, properties)) = resolved.iter().find(|(k, _)| *k == key) {
        return Ok(Arc::clone(properties));
    }
    let properties = Arc::new(load(conn)?);
    resolved.push((key, Arc::clone(&properties)));
    Ok(properties)
}

fn load(conn: &ConnectArgs) -> anyhow::Result<ClientProperties> {
    let cli = &conn.client_properties;
    let cli_value = |key: &str| {
        cli.iter()
            .rev()
            .find(|kv| kv.key == key)
            .map(|kv| kv.value.as_str())
    };
    let mut entries = BTreeMap::new();
    if let Some(path) = &conn.command_config {
        let java = read_command_config(path)?;
        let overrides = Overrides {
            protocol: cli_value("security.protocol"),
            mechanism: cli_value("sasl.mechanism").or_else(|| cli_value("sasl.mechanisms")),
            librdkafka_flag: Some("-X"),
        };
        let translation = translate(&java, &overrides)
            .map_err(|e| anyhow!("--command-config {}: {e}", path.display()))?;
        if !translation.ignored.is_empty() {
            tracing::warn!(
                "--command-config {}: ignoring {} (no meaning for moldau's clients{})",
                path.display(),
                translation.ignored.join(", "),
                match translation.ignored_because_of_protocol {
                    Some(protocol) => format!(", or not read with security.protocol={protocol}"),
                    None => String::new(),
                }
            );
        }
        entries = translation.properties;
        for kv in cli {
            if let Some(setting) = SETTINGS.iter().find(|s| s.contains(&kv.key.as_str())) {
                for key in *setting {
                    entries.remove(*key);
                }
            }
        }
    }
    for kv in cli {
        entries.insert(kv.key.clone(), kv.value.clone());
    }
    Ok(ClientProperties {
        entries,
        cli_keys: cli.iter().map(|kv| kv.key.clone()).collect(),
    })
}

/// Reads and parses the file; errors name it (and the line).
pub fn read_command_config(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let bytes = std::fs::read(path)
        .map_err(|e| anyhow!("cannot read --command-config {}: {e}", path.display()))?;
    java_properties::parse(&java_properties::decode(&bytes)).map_err(|e| {
        anyhow!(
            "--command-config {}, line {}: {}",
            path.display(),
            e.line,
            e.message
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use moldau_security::test_pki::TestPki;

    const PLAIN_JAAS: &str = "org.apache.kafka.common.security.plain.PlainLoginModule \
        required username=\"alice\" password=\"alice-secret\";";

    fn conn(file: Option<&Path>, cli: &[(&str, &str)]) -> ConnectArgs {
        ConnectArgs {
            bootstrap_server: "127.0.0.1:9092".into(),
            request_timeout_ms: 30_000,
            client_properties: cli
                .iter()
                .map(|(k, v)| KeyValue {
                    key: k.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            command_config: file.map(Path::to_path_buf),
        }
    }

    #[test]
    fn cli_properties_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::new();
        let ca = pki.write_ca(dir.path());
        let file = dir.path().join("client.properties");
        std::fs::write(
            &file,
            format!(
                "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.jaas.config={}\n\
                 ssl.truststore.type=PEM\nssl.truststore.location={}\nclient.id=from-file\n",
                PLAIN_JAAS,
                ca.display()
            ),
        )
        .unwrap();
        let p = load(&conn(
            Some(&file),
            &[
                ("ssl.ca.location", "/etc/ssl/ca.pem"),
                ("sasl.password", "other"),
                ("client.id", "from-cli"),
            ],
        ))
        .unwrap();
        assert_eq!(p.get("ssl.ca.location"), Some("/etc/ssl/ca.pem"));
        assert_eq!(p.get("ssl.ca.pem"), None, "replaced by -X ssl.ca.location");
        assert_eq!(p.get("sasl.username"), Some("alice"));
        assert_eq!(p.get("sasl.password"), Some("other"));
        assert_eq!(p.get("client.id"), Some("from-cli"));
        assert_eq!(p.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(
            p.cli_keys(),
            ["ssl.ca.location", "sasl.password", "client.id"]
        );
    }

    #[test]
    fn file_errors_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.properties");
        let e = load(&conn(Some(&missing), &[])).err().unwrap().to_string();
        assert!(
            e.starts_with(&format!(
                "cannot read --command-config {}",
                missing.display()
            )),
            "{e}"
        );
        let bad = dir.path().join("bad.properties");
        std::fs::write(&bad, "security.protocol=SSL\n=oops\n").unwrap();
        let e = load(&conn(Some(&bad), &[])).err().unwrap().to_string();
        assert_eq!(
            e,
            format!(
                "--command-config {}, line 2: no key before the value",
                bad.display()
            )
        );
        let wrong = dir.path().join("wrong.properties");
        std::fs::write(
            &wrong,
            "security.protocol=SASL_SSL\nsasl.mechanism=GSSAPI\n",
        )
        .unwrap();
        let e = load(&conn(Some(&wrong), &[])).err().unwrap().to_string();
        assert!(
            e.starts_with(&format!(
                "--command-config {}: sasl.mechanism: GSSAPI",
                wrong.display()
            )),
            "{e}"
        );
    }
}
