//! A server asked for security it cannot give as configured (a TLS listener without a key
//! store, SASL with Kafka's default GSSAPI, a setting no listener reads, an authorizer
//! class it does not have) must refuse to start (exit 2, naming the key) rather than
//! serve anyone in plaintext or unauthenticated.

mod common;

use common::{free_port, moldau};

#[test]
fn security_settings_stop_the_server_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("log.dirs={}", dir.path().join("data").display());
    let port = free_port();
    let cases = [
        (format!("listeners=SSL://127.0.0.1:{port}"), "listeners"),
        (
            format!("listeners=SASL_SSL://127.0.0.1:{port}"),
            "listeners",
        ),
        (
            "listener.security.protocol.map=PLAINTEXT:SASL_PLAINTEXT".to_string(),
            "sasl.enabled.mechanisms",
        ),
        (
            "ssl.keystore.location=/etc/kafka/ks.jks".to_string(),
            "ssl.keystore.location",
        ),
        (
            "sasl.enabled.mechanisms=SCRAM-SHA-512".to_string(),
            "sasl.enabled.mechanisms",
        ),
        (
            "authorizer.class.name=kafka.security.authorizer.AclAuthorizer".to_string(),
            "authorizer.class.name",
        ),
        ("super.users=User:admin".to_string(), "super.users"),
        (
            "principal.builder.class=com.example.Builder".to_string(),
            "principal.builder.class",
        ),
        (
            "listener.name.plaintext.scram-sha-512.sasl.jaas.config=x".to_string(),
            "listener.name.plaintext.scram-sha-512.sasl.jaas.config",
        ),
    ];
    for (setting, key) in &cases {
        let listener = format!("listeners=PLAINTEXT://127.0.0.1:{port}");
        // The case's own `listeners`, if any, comes last and wins.
        let out = moldau(&[
            "server",
            "--override",
            &listener,
            "--override",
            &data,
            "--override",
            setting,
        ]);
        assert_eq!(out.code, Some(2), "{setting}: {}", out.stderr);
        assert!(out.stderr.contains(key), "{setting}: {}", out.stderr);
        // It stopped before opening anything: nothing is listening.
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }
}

#[test]
fn a_malformed_protocol_map_stops_the_server_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.properties");
    std::fs::write(
        &config,
        format!(
            "listeners=PLAINTEXT://127.0.0.1:{}\nlog.dirs={}\n\
             listener.security.protocol.map=PLAINTEXT=PLAINTEXT\n",
            free_port(),
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let out = moldau(&["server", "--config", config.to_str().unwrap()]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("listener.security.protocol.map"),
        "{}",
        out.stderr
    );
}
