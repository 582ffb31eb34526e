//! TLS listeners with a real client (librdkafka): server-authenticated TLS, mutual TLS,
//! and hostile handshakes. Certificates are made by the test.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use common::secured::{sasl_plain_broker, PLAIN_JAAS};
use common::{poll_messages, TestBroker};
use moldau_security::test_pki::TestPki;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

/// A broker whose only listener is SSL, with a PEM key store for 127.0.0.1.
async fn tls_broker(dir: &Path, pki: &TestPki, extra: &[(&str, &str)]) -> TestBroker {
    let server = pki.write_leaf(dir, "broker", "broker", &["localhost", "127.0.0.1"]);
    let ca = pki.write_ca(dir);
    let key_store = server.key_store.display().to_string();
    let trust_store = ca.display().to_string();
    let mut overrides = vec![
        ("listeners", "SSL://127.0.0.1:0"),
        ("inter.broker.listener.name", "SSL"),
        ("ssl.keystore.type", "PEM"),
        ("ssl.keystore.location", key_store.as_str()),
        ("ssl.truststore.type", "PEM"),
        ("ssl.truststore.location", trust_store.as_str()),
    ];
    overrides.extend_from_slice(extra);
    TestBroker::start_with(&overrides).await
}

fn tls_client(broker: &TestBroker, ca: &Path) -> ClientConfig {
    let mut config = broker.client_config();
    config
        .set("security.protocol", "ssl")
        .set("ssl.ca.location", ca.display().to_string());
    config
}

async fn round_trip(config: &ClientConfig, topic: &str, count: usize) {
    let producer: FutureProducer = config.create().expect("producer");
    for i in 0..count {
        let value = format!("value-{i}");
        producer
            .send(
                FutureRecord::to(topic).key("k").payload(&value),
                Duration::from_secs(10),
            )
            .await
            .expect("produced over TLS");
    }
    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", "tls-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let got = poll_messages(&consumer, count, Duration::from_secs(20));
    assert_eq!(got.len(), count);
    for (i, m) in got.iter().enumerate() {
        use rdkafka::Message;
        assert_eq!(m.payload(), Some(format!("value-{i}").as_bytes()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_produce_and_consume_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new();
    let broker = tls_broker(dir.path(), &pki, &[]).await;
    let ca = pki.write_ca(dir.path());
    round_trip(&tls_client(&broker, &ca), "tls-topic", 50).await;

    // A client that does not trust the broker's CA cannot connect.
    let other = tempfile::tempdir().unwrap();
    let stranger_ca = TestPki::named("Another CA").write_ca(other.path());
    let producer: FutureProducer = tls_client(&broker, &stranger_ca)
        .set("message.timeout.ms", "3000")
        .create()
        .unwrap();
    let sent = producer
        .send(
            FutureRecord::to("tls-topic").key("k").payload("x"),
            Duration::from_secs(5),
        )
        .await;
    assert!(sent.is_err(), "an untrusted broker must not get records");
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_requires_a_certificate_the_broker_trusts() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new();
    let broker = tls_broker(dir.path(), &pki, &[("ssl.client.auth", "required")]).await;
    let ca = pki.write_ca(dir.path());

    // Without a client certificate: refused.
    let producer: FutureProducer = tls_client(&broker, &ca)
        .set("message.timeout.ms", "3000")
        .create()
        .unwrap();
    let sent = producer
        .send(
            FutureRecord::to("mtls").key("k").payload("x"),
            Duration::from_secs(5),
        )
        .await;
    assert!(sent.is_err(), "no client certificate, no access");

    // With one from another CA: refused.
    let other_dir = tempfile::tempdir().unwrap();
    let other = TestPki::named("Another CA");
    let mallory = other.write_leaf(other_dir.path(), "mallory", "mallory", &[]);
    let producer: FutureProducer = tls_client(&broker, &ca)
        .set(
            "ssl.certificate.location",
            mallory.chain.display().to_string(),
        )
        .set("ssl.key.location", mallory.key.display().to_string())
        .set("message.timeout.ms", "3000")
        .create()
        .unwrap();
    let sent = producer
        .send(
            FutureRecord::to("mtls").key("k").payload("x"),
            Duration::from_secs(5),
        )
        .await;
    assert!(sent.is_err(), "an untrusted client certificate, no access");

    // With one the broker trusts: served.
    let alice = pki.write_leaf(dir.path(), "alice", "alice", &[]);
    let mut config = tls_client(&broker, &ca);
    config
        .set(
            "ssl.certificate.location",
            alice.chain.display().to_string(),
        )
        .set("ssl.key.location", alice.key.display().to_string());
    round_trip(&config, "mtls", 10).await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_plaintext_on_a_tls_listener_are_closed_and_others_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new();
    let broker = tls_broker(dir.path(), &pki, &[]).await;
    let ca = pki.write_ca(dir.path());
    let addr = broker.bootstrap();

    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    // A plaintext ApiVersions request (what a client configured for PLAINTEXT sends).
    let plaintext_request = [
        0u8, 0, 0, 14, 0, 18, 0, 0, 0, 0, 0, 1, 0, 4, b't', b'e', b's', b't',
    ];
    // A TLS record header announcing a huge handshake, then silence (a truncated hello).
    let truncated_hello = [0x16u8, 0x03, 0x01, 0xff, 0xff, 0x01, 0x00];
    for bytes in [&garbage[..], &plaintext_request[..], &truncated_hello[..]] {
        let mut socket = std::net::TcpStream::connect(&addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let _ = socket.write_all(bytes);
        if bytes.len() == truncated_hello.len() {
            // Half a hello: the broker waits for the rest (bounded by
            // connections.max.idle.ms); meanwhile others are served.
            round_trip(&tls_client(&broker, &ca), "after-garbage", 5).await;
            drop(socket);
            continue;
        }
        // The broker answers with a TLS alert at most, and closes.
        let mut answer = Vec::new();
        let read = socket.read_to_end(&mut answer);
        assert!(read.is_ok(), "closed, not timed out: {read:?}");
        assert!(answer.len() < 64, "no Kafka response: {answer:?}");
    }
    round_trip(&tls_client(&broker, &ca), "after-garbage-2", 5).await;
    broker.shutdown().await;
}

fn sasl_client(broker: &TestBroker, mechanism: &str, user: &str, password: &str) -> ClientConfig {
    let mut config = broker.client_config();
    config
        .set("security.protocol", "sasl_plaintext")
        .set("sasl.mechanism", mechanism)
        .set("sasl.username", user)
        .set("sasl.password", password);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_plain_users_produce_and_consume_and_wrong_passwords_are_refused() {
    let broker = sasl_plain_broker(&[]).await;
    round_trip(
        &sasl_client(&broker, "PLAIN", "alice", "alice-secret"),
        "plain",
        20,
    )
    .await;

    for (user, password) in [("alice", "wrong"), ("mallory", "alice-secret")] {
        let producer: FutureProducer = sasl_client(&broker, "PLAIN", user, password)
            .set("message.timeout.ms", "3000")
            .create()
            .unwrap();
        let sent = producer
            .send(
                FutureRecord::to("plain").key("k").payload("x"),
                Duration::from_secs(5),
            )
            .await;
        assert!(
            sent.is_err(),
            "{user} with a wrong password must not produce"
        );
    }
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_ssl_authenticates_inside_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new();
    let server = pki.write_leaf(dir.path(), "broker", "broker", &["localhost", "127.0.0.1"]);
    let ca = pki.write_ca(dir.path());
    let key_store = server.key_store.display().to_string();
    let trust_store = ca.display().to_string();
    let broker = TestBroker::start_with(&[
        ("listeners", "SASL_SSL://127.0.0.1:0"),
        ("inter.broker.listener.name", "SASL_SSL"),
        ("sasl.enabled.mechanisms", "PLAIN"),
        ("sasl.mechanism.inter.broker.protocol", "PLAIN"),
        ("listener.name.sasl_ssl.plain.sasl.jaas.config", PLAIN_JAAS),
        ("ssl.keystore.type", "PEM"),
        ("ssl.keystore.location", key_store.as_str()),
        ("ssl.truststore.type", "PEM"),
        ("ssl.truststore.location", trust_store.as_str()),
    ])
    .await;
    let mut config = sasl_client(&broker, "PLAIN", "alice", "alice-secret");
    config
        .set("security.protocol", "sasl_ssl")
        .set("ssl.ca.location", ca.display().to_string());
    round_trip(&config, "sasl-ssl", 10).await;
    broker.shutdown().await;
}

mod raw_sasl {
    use super::*;
    use crate::common::raw::{RawConnection, Reply};
    use crate::common::wire::WireClient;
    use kafka_protocol::messages::{
        ApiKey, MetadataRequest, SaslAuthenticateRequest, SaslAuthenticateResponse,
        SaslHandshakeRequest, SaslHandshakeResponse,
    };
    use kafka_protocol::protocol::StrBytes;

    fn plain_token(user: &str, password: &str) -> bytes::Bytes {
        bytes::Bytes::from(format!("\0{user}\0{password}").into_bytes())
    }

    async fn handshake(client: &mut WireClient, mechanism: &'static str) -> SaslHandshakeResponse {
        client
            .call(
                ApiKey::SaslHandshake,
                1,
                &SaslHandshakeRequest::default()
                    .with_mechanism(StrBytes::from_static_str(mechanism)),
            )
            .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_before_authentication_out_of_order_or_oversized_close_the_connection() {
        let broker = sasl_plain_broker(&[("sasl.server.max.receive.size", "1024")]).await;
        let addr = broker.bootstrap();

        // Metadata before authenticating: closed without an answer.
        let mut raw = RawConnection::connect(&addr).await;
        let mut body = crate::common::raw::raw_header(3, 1, 7, false);
        body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // all topics
        raw.send_frame(&body).await;
        raw.expect_closed("Metadata before SASL").await;

        // SaslAuthenticate before SaslHandshake: closed.
        let mut raw = RawConnection::connect(&addr).await;
        let mut body = crate::common::raw::raw_header(36, 0, 1, false);
        body.extend_from_slice(&[0, 0, 0, 0]);
        raw.send_frame(&body).await;
        raw.expect_closed("SaslAuthenticate before SaslHandshake")
            .await;

        // A frame larger than sasl.server.max.receive.size: closed before it is read.
        let mut raw = RawConnection::connect(&addr).await;
        raw.send(&4096i32.to_be_bytes()).await;
        raw.expect_closed("oversized SASL frame").await;

        // An unsupported mechanism: UNSUPPORTED_SASL_MECHANISM listing the enabled ones.
        let mut client = WireClient::connect(&addr).await;
        let answer = handshake(&mut client, "GSSAPI").await;
        assert_eq!(answer.error_code, 33);
        assert_eq!(answer.mechanisms, vec![StrBytes::from_static_str("PLAIN")]);

        // Cut off after the handshake: the broker notices the close (no hang, no leak),
        // and a correct exchange on a new connection then works.
        let mut client = WireClient::connect(&addr).await;
        assert_eq!(handshake(&mut client, "PLAIN").await.error_code, 0);
        drop(client);
        let mut client = WireClient::connect(&addr).await;
        assert_eq!(handshake(&mut client, "PLAIN").await.error_code, 0);
        let answer: SaslAuthenticateResponse = client
            .call(
                ApiKey::SaslAuthenticate,
                2,
                &SaslAuthenticateRequest::default()
                    .with_auth_bytes(plain_token("alice", "alice-secret")),
            )
            .await;
        assert_eq!(answer.error_code, 0, "{:?}", answer.error_message);
        // Authenticated: ordinary requests are served, and a second SaslAuthenticate is
        // ILLEGAL_SASL_STATE.
        let _: kafka_protocol::messages::MetadataResponse = client
            .call(ApiKey::Metadata, 12, &MetadataRequest::default())
            .await;
        let again: SaslAuthenticateResponse = client
            .call(
                ApiKey::SaslAuthenticate,
                2,
                &SaslAuthenticateRequest::default()
                    .with_auth_bytes(plain_token("alice", "alice-secret")),
            )
            .await;
        assert_eq!(again.error_code, 34);
        broker.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_thousand_wrong_passwords_leave_the_broker_serving() {
        // No delay after a failure, so the thousand attempts do not take minutes.
        let broker = sasl_plain_broker(&[("connection.failed.authentication.delay.ms", "0")]).await;
        let addr = broker.bootstrap();
        let mut attempts = tokio::task::JoinSet::new();
        for worker in 0..20 {
            let addr = addr.clone();
            attempts.spawn(async move {
                for attempt in 0..50 {
                    let mut client = WireClient::connect(&addr).await;
                    assert_eq!(handshake(&mut client, "PLAIN").await.error_code, 0);
                    let answer: SaslAuthenticateResponse = client
                        .call(
                            ApiKey::SaslAuthenticate,
                            2,
                            &SaslAuthenticateRequest::default().with_auth_bytes(plain_token(
                                "alice",
                                &format!("guess-{worker}-{attempt}"),
                            )),
                        )
                        .await;
                    assert_eq!(answer.error_code, 58);
                    assert_eq!(
                        answer.error_message.as_deref(),
                        Some("Authentication failed: Invalid username or password")
                    );
                }
            });
        }
        while let Some(done) = attempts.join_next().await {
            done.expect("attempts");
        }
        round_trip(
            &sasl_client(&broker, "PLAIN", "alice", "alice-secret"),
            "after-guesses",
            5,
        )
        .await;
        broker.shutdown().await;
    }

    async fn authenticate(
        client: &mut WireClient,
        user: &str,
        password: &str,
    ) -> SaslAuthenticateResponse {
        assert_eq!(handshake(client, "PLAIN").await.error_code, 0);
        client
            .call(
                ApiKey::SaslAuthenticate,
                2,
                &SaslAuthenticateRequest::default().with_auth_bytes(plain_token(user, password)),
            )
            .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sessions_end_after_connections_max_reauth_ms_unless_renewed_as_the_same_principal() {
        let broker = sasl_plain_broker(&[("connections.max.reauth.ms", "1500")]).await;
        let addr = broker.bootstrap();
        let metadata = || MetadataRequest::default();

        // KIP-368: the session lifetime is announced; a request after it closes the connection.
        let mut client = WireClient::connect(&addr).await;
        let answer = authenticate(&mut client, "alice", "alice-secret").await;
        assert_eq!(answer.error_code, 0);
        assert_eq!(answer.session_lifetime_ms, 1500);
        tokio::time::sleep(Duration::from_millis(1800)).await;
        let mut raw = client.into_raw();
        let mut body = crate::common::raw::raw_header(3, 1, 9, false);
        body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        raw.send_frame(&body).await;
        raw.expect_closed("a request after the session ended").await;

        // Re-authenticating in time, as the same user, keeps the connection serving.
        let mut client = WireClient::connect(&addr).await;
        assert_eq!(
            authenticate(&mut client, "alice", "alice-secret")
                .await
                .error_code,
            0
        );
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(800)).await;
            let again = authenticate(&mut client, "alice", "alice-secret").await;
            assert_eq!(again.error_code, 0);
            let _: kafka_protocol::messages::MetadataResponse =
                client.call(ApiKey::Metadata, 12, &metadata()).await;
        }
        // SaslAuthenticate v2 by hand (compact bytes: length + 1, no tagged fields), so a
        // closed connection can be observed.
        let authenticate_frame = |user: &str, password: &str| {
            let mut body = crate::common::raw::raw_header(36, 2, 99, true);
            let token = plain_token(user, password);
            body.extend_from_slice(&[(token.len() + 1) as u8]);
            body.extend_from_slice(&token);
            body.extend_from_slice(&[0]);
            body
        };
        // The frame is well formed: as the same user it is answered ...
        assert_eq!(handshake(&mut client, "PLAIN").await.error_code, 0);
        let mut raw = client.into_raw();
        raw.send_frame(&authenticate_frame("alice", "alice-secret"))
            .await;
        raw.expect_frame("re-authentication as the same principal")
            .await;
        // ... as someone else the connection is closed.
        let mut client = WireClient::connect(&addr).await;
        assert_eq!(
            authenticate(&mut client, "alice", "alice-secret")
                .await
                .error_code,
            0
        );
        assert_eq!(handshake(&mut client, "PLAIN").await.error_code, 0);
        let mut raw = client.into_raw();
        raw.send_frame(&authenticate_frame("bob", "bob-secret"))
            .await;
        raw.expect_closed("re-authentication as another principal")
            .await;

        // A real client (librdkafka) re-authenticates by itself and keeps producing.
        let producer: FutureProducer = sasl_client(&broker, "PLAIN", "alice", "alice-secret")
            .create()
            .unwrap();
        for i in 0..12 {
            producer
                .send(
                    FutureRecord::to("reauth")
                        .key("k")
                        .payload(&format!("v{i}")),
                    Duration::from_secs(10),
                )
                .await
                .expect("produce across re-authentications");
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        broker.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_v0_handshake_takes_bare_tokens() {
        // SaslHandshake v0 (clients before KIP-152): the tokens follow as size-prefixed
        // frames without Kafka headers.
        let broker = sasl_plain_broker(&[]).await;
        let addr = broker.bootstrap();
        let metadata_v1 = || {
            let mut body = crate::common::raw::raw_header(3, 1, 9, false);
            body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
            body
        };
        let v0_handshake =
            || SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
        let mut client = WireClient::connect(&addr).await;
        let answer: SaslHandshakeResponse =
            client.call(ApiKey::SaslHandshake, 0, &v0_handshake()).await;
        assert_eq!(answer.error_code, 0);
        let mut raw = client.into_raw();
        raw.send_frame(&plain_token("alice", "alice-secret")).await;
        let token = raw.expect_frame("PLAIN's empty server token").await;
        assert!(token.is_empty(), "{token:?}");
        raw.send_frame(&metadata_v1()).await;
        raw.expect_frame("Metadata once authenticated").await;
        // A wrong password: the connection is closed (v0 has no error response).
        let mut client = WireClient::connect(&addr).await;
        let _: SaslHandshakeResponse = client.call(ApiKey::SaslHandshake, 0, &v0_handshake()).await;
        let mut raw = client.into_raw();
        raw.send_frame(&plain_token("alice", "wrong")).await;
        raw.expect_closed("a wrong password in a bare token").await;
        broker.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_authentication_is_answered_then_closed() {
        let broker = sasl_plain_broker(&[]).await;
        let addr = broker.bootstrap();
        let mut client = WireClient::connect(&addr).await;
        assert_eq!(handshake(&mut client, "PLAIN").await.error_code, 0);
        let answer: SaslAuthenticateResponse = client
            .call(
                ApiKey::SaslAuthenticate,
                2,
                &SaslAuthenticateRequest::default().with_auth_bytes(plain_token("alice", "no")),
            )
            .await;
        assert_eq!(answer.error_code, 58);
        // The same socket is then closed by the broker.
        let mut raw = client.into_raw();
        assert!(matches!(raw.reply().await, Reply::Closed));
        broker.shutdown().await;
    }
}

mod dynamic_key_store {
    use super::*;
    use crate::common::wire::WireClient;
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    use kafka_protocol::messages::{
        ApiKey, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    };
    use kafka_protocol::protocol::StrBytes;

    async fn alter(
        addr: &str,
        ca_pem: &str,
        broker: &str,
        key: &str,
        value: &str,
    ) -> (i16, Option<String>) {
        let mut client = WireClient::connect_tls(addr, ca_pem).await;
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(StrBytes::from_string(broker.to_string()))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(StrBytes::from_string(key.to_string()))
                    .with_config_operation(0)
                    .with_value(Some(StrBytes::from_string(value.to_string())))]),
        ]);
        let response: IncrementalAlterConfigsResponse = client
            .call(ApiKey::IncrementalAlterConfigs, 1, &request)
            .await;
        let result = &response.responses[0];
        (
            result.error_code,
            result.error_message.as_ref().map(|m| m.to_string()),
        )
    }

    async fn reachable(config: &ClientConfig) -> bool {
        let producer: FutureProducer = config
            .clone()
            .set("message.timeout.ms", "3000")
            .create()
            .unwrap();
        producer
            .send(
                FutureRecord::to("dynamic").key("k").payload("x"),
                Duration::from_secs(5),
            )
            .await
            .is_ok()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_key_store_set_per_listener_serves_new_handshakes_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let first_ca = TestPki::new();
        let mut broker = tls_broker(dir.path(), &first_ca, &[]).await;
        let addr = broker.bootstrap();

        // The same subject and names, issued by another CA.
        let second_dir = tempfile::tempdir().unwrap();
        let second_ca = TestPki::named("Second CA");
        let renewed = second_ca.write_leaf(
            second_dir.path(),
            "broker",
            "broker",
            &["localhost", "127.0.0.1"],
        );
        let second_trust = second_ca.write_ca(second_dir.path());
        let second_client = tls_client(&broker, &second_trust);
        assert!(!reachable(&second_client).await, "not trusted yet");

        // Kafka's rules: per listener, per broker.
        let location = renewed.key_store.display().to_string();
        let (code, message) = alter(
            &addr,
            &first_ca.ca_pem,
            "1",
            "ssl.keystore.location",
            &location,
        )
        .await;
        assert_eq!(code, 42, "{message:?}");
        assert!(message.unwrap().contains("listener prefix"));
        let key = "listener.name.ssl.ssl.keystore.location";
        let (code, message) = alter(&addr, &first_ca.ca_pem, "", key, &location).await;
        assert_eq!(code, 42, "{message:?}");
        assert!(message.unwrap().contains("broker id must be specified"));
        // Another subject: refused (ssl.allow.dn.changes is false).
        let other = second_ca.write_leaf(second_dir.path(), "other", "other", &["127.0.0.1"]);
        let (code, message) = alter(
            &addr,
            &first_ca.ca_pem,
            "1",
            key,
            &other.key_store.display().to_string(),
        )
        .await;
        assert_eq!(code, 42);
        assert!(message
            .unwrap()
            .contains("DistinguishedName does not match"));
        // A file that does not exist: refused, naming it.
        let (code, message) =
            alter(&addr, &first_ca.ca_pem, "1", key, "/no/such/keystore.pem").await;
        assert_eq!(code, 42);
        assert!(message.unwrap().contains("/no/such/keystore.pem"));

        let (code, message) = alter(&addr, &first_ca.ca_pem, "1", key, &location).await;
        assert_eq!(code, 0, "{message:?}");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !reachable(&second_client).await {
            assert!(
                std::time::Instant::now() < deadline,
                "new key store not served"
            );
        }

        broker.restart().await;
        let second_client = tls_client(&broker, &second_trust);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !reachable(&second_client).await {
            assert!(
                std::time::Instant::now() < deadline,
                "the dynamic key store is not served after a restart"
            );
        }
        broker.shutdown().await;
    }
}

mod oauthbearer {
    use super::*;
    use moldau_security::oauthbearer::TestJwtSigner;
    use rdkafka::client::{ClientContext, OAuthToken};
    use rdkafka::producer::FutureProducer;

    /// A client context that hands librdkafka a JWT signed by the test's key.
    struct SignedTokens {
        token: String,
        expires_ms: i64,
    }

    impl ClientContext for SignedTokens {
        const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

        fn generate_oauth_token(
            &self,
            _config: Option<&str>,
        ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
            Ok(OAuthToken {
                token: self.token.clone(),
                principal_name: "alice".into(),
                lifetime_ms: self.expires_ms,
            })
        }
    }

    fn now_s() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    async fn send_with(config: &ClientConfig, token: String, topic: &str) -> bool {
        let context = SignedTokens {
            token,
            expires_ms: (now_s() + 600) * 1000,
        };
        let producer: FutureProducer<SignedTokens> = config
            .clone()
            .set("security.protocol", "sasl_plaintext")
            .set("sasl.mechanism", "OAUTHBEARER")
            .set("message.timeout.ms", "5000")
            .create_with_context(context)
            .unwrap();
        producer
            .send(
                FutureRecord::to(topic).key("k").payload("v"),
                Duration::from_secs(8),
            )
            .await
            .is_ok()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tokens_signed_by_a_key_of_the_jwks_authenticate_and_others_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let signer = TestJwtSigner::es256("key-1");
        let jwks = dir.path().join("jwks.json");
        std::fs::write(&jwks, TestJwtSigner::jwks(&[&signer])).unwrap();
        let url = format!("file://{}", jwks.display());
        let broker = TestBroker::start_with(&[
            (
                "listeners",
                "SASL_PLAINTEXT://127.0.0.1:0,PLAINTEXT://127.0.0.1:0",
            ),
            ("inter.broker.listener.name", "PLAINTEXT"),
            ("sasl.enabled.mechanisms", "OAUTHBEARER"),
            ("sasl.oauthbearer.jwks.endpoint.url", url.as_str()),
            ("sasl.oauthbearer.expected.audience", "moldau"),
            ("sasl.oauthbearer.expected.issuer", "https://idp.example"),
        ])
        .await;
        let config = broker.client_config();
        let claims = |sub: &str, aud: &str, exp: i64| {
            serde_json::json!({
                "sub": sub, "aud": aud, "iss": "https://idp.example",
                "iat": now_s(), "exp": exp, "scope": "kafka",
            })
        };
        let good = signer.sign(&claims("alice", "moldau", now_s() + 600));
        assert!(send_with(&config, good, "oauth").await, "a valid token");

        let stranger = TestJwtSigner::es256("key-1");
        let forged = stranger.sign(&claims("alice", "moldau", now_s() + 600));
        assert!(
            !send_with(&config, forged, "oauth").await,
            "a token of another key"
        );
        let expired = signer.sign(&claims("alice", "moldau", now_s() - 3600));
        assert!(
            !send_with(&config, expired, "oauth").await,
            "an expired token"
        );
        let wrong_audience = signer.sign(&claims("alice", "elsewhere", now_s() + 600));
        assert!(
            !send_with(&config, wrong_audience, "oauth").await,
            "another audience"
        );
        broker.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unsigned_tokens_need_the_unsecured_handler_named() {
        // Kafka's default accepts unsigned tokens; Moldau refuses to start without a
        // JWKS or the unsecured handler named (fail closed).
        let err = moldau_broker::ServerConfig::load(
            None,
            &[
                (
                    "listeners".to_string(),
                    "SASL_PLAINTEXT://127.0.0.1:0,PLAINTEXT://127.0.0.1:0".to_string(),
                ),
                (
                    "sasl.enabled.mechanisms".to_string(),
                    "OAUTHBEARER".to_string(),
                ),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("sasl.server.callback.handler.class"), "{err}");

        let broker = TestBroker::start_with(&[
            ("listeners", "SASL_PLAINTEXT://127.0.0.1:0,PLAINTEXT://127.0.0.1:0"),
            ("inter.broker.listener.name", "PLAINTEXT"),
            ("sasl.enabled.mechanisms", "OAUTHBEARER"),
            (
                "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class",
                "org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler",
            ),
        ])
        .await;
        // librdkafka's built-in unsecured token (sasl.oauthbearer.config=principal=...).
        let producer: FutureProducer = broker
            .client_config()
            .set("security.protocol", "sasl_plaintext")
            .set("sasl.mechanism", "OAUTHBEARER")
            .set("enable.sasl.oauthbearer.unsecure.jwt", "true")
            .set("sasl.oauthbearer.config", "principal=alice")
            .create()
            .unwrap();
        producer
            .send(
                FutureRecord::to("unsecured").key("k").payload("v"),
                Duration::from_secs(10),
            )
            .await
            .expect("an unsecured token is accepted in the unsecured mode");
        broker.shutdown().await;
    }
}
