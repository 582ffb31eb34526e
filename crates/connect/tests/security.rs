//! A worker's security settings against an in-process broker whose only listener is
//! SASL_SSL (PLAIN, certificates made at run time): Kafka Connect's client keys in the
//! worker properties make the file pipeline work; a wrong password fails the start with
//! the broker's reason; an https REST listener answers over TLS only; settings the worker
//! cannot act on fail the start naming the key; a distributed worker joins its group over
//! SASL_SSL (moldau-wire) and serves https.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::TestBroker;
use moldau_connect::config::Props;
use moldau_connect::runtime::{start_distributed, start_standalone, RunningWorker};
use moldau_connect::worker::Plugins;
use moldau_security::test_pki::TestPki;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(30);

/// PLAIN users `admin` (the broker itself) and `alice` (the workers).
const BROKER_JAAS: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required \
    username=\"admin\" password=\"admin-secret\" user_admin=\"admin-secret\" \
    user_alice=\"alice-secret\";";

fn plain_jaas(user: &str, password: &str) -> String {
    format!(
        "org.apache.kafka.common.security.plain.PlainLoginModule required \
         username=\"{user}\" password=\"{password}\";"
    )
}

/// A SASL_SSL broker, the test CA and the worker's REST certificate.
struct Secured {
    broker: TestBroker,
    dir: tempfile::TempDir,
    pki: TestPki,
    ca: PathBuf,
    /// Kafka's PEM key store (key, then chain) for 127.0.0.1 and localhost.
    worker_key_store: PathBuf,
}

impl Secured {
    async fn start() -> Secured {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::new();
        let ca = pki.write_ca(dir.path());
        let broker_files =
            pki.write_leaf(dir.path(), "broker", "broker", &["localhost", "127.0.0.1"]);
        let worker_files =
            pki.write_leaf(dir.path(), "worker", "worker", &["localhost", "127.0.0.1"]);
        let key_store = broker_files.key_store.display().to_string();
        let trust_store = ca.display().to_string();
        let broker = TestBroker::start_with(&[
            ("listeners", "SASL_SSL://127.0.0.1:0"),
            ("inter.broker.listener.name", "SASL_SSL"),
            ("sasl.enabled.mechanisms", "PLAIN"),
            ("sasl.mechanism.inter.broker.protocol", "PLAIN"),
            ("listener.name.sasl_ssl.plain.sasl.jaas.config", BROKER_JAAS),
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.location", key_store.as_str()),
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.location", trust_store.as_str()),
        ])
        .await;
        Secured {
            broker,
            dir,
            pki,
            ca,
            worker_key_store: worker_files.key_store,
        }
    }

    /// Kafka Connect's client settings for SASL_SSL PLAIN as `alice` with `password`.
    fn client_keys(&self, password: &str) -> Vec<(String, String)> {
        vec![
            ("security.protocol".into(), "SASL_SSL".into()),
            ("sasl.mechanism".into(), "PLAIN".into()),
            ("sasl.jaas.config".into(), plain_jaas("alice", password)),
            ("ssl.truststore.type".into(), "PEM".into()),
            (
                "ssl.truststore.location".into(),
                self.ca.display().to_string(),
            ),
        ]
    }

    /// A standalone worker's properties: SASL_SSL as `alice`, an https REST listener with
    /// Kafka Connect's `listeners.https.` keys.
    fn standalone_props(&self, password: &str) -> Props {
        let mut p: Props = [
            ("bootstrap.servers", self.broker.bootstrap()),
            (
                "key.converter",
                "org.apache.kafka.connect.storage.StringConverter".into(),
            ),
            (
                "value.converter",
                "org.apache.kafka.connect.storage.StringConverter".into(),
            ),
            (
                "offset.storage.file.filename",
                self.dir.path().join("offsets").display().to_string(),
            ),
            ("offset.flush.interval.ms", "200".into()),
            ("listeners", "https://127.0.0.1:0".into()),
            ("listeners.https.ssl.keystore.type", "PEM".into()),
            (
                "listeners.https.ssl.keystore.location",
                self.worker_key_store.display().to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        p.extend(self.client_keys(password));
        p
    }

    /// librdkafka properties of the test's own clients.
    fn rdkafka(&self) -> rdkafka::ClientConfig {
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", self.broker.bootstrap())
            .set("security.protocol", "sasl_ssl")
            .set("sasl.mechanism", "PLAIN")
            .set("sasl.username", "alice")
            .set("sasl.password", "alice-secret")
            .set("ssl.ca.location", self.ca.display().to_string());
        c
    }

    async fn create_topic(&self, name: &str) {
        let admin: AdminClient<DefaultClientContext> = self.rdkafka().create().unwrap();
        let topic = NewTopic::new(name, 1, TopicReplication::Fixed(1));
        for r in admin
            .create_topics([&topic], &AdminOptions::new())
            .await
            .unwrap()
        {
            r.expect("topic created");
        }
    }

    /// An HTTP client trusting the test CA.
    fn agent(&self) -> ureq::Agent {
        agent_trusting(Some(&self.pki.ca_pem))
    }
}

fn agent_trusting(ca_pem: Option<&str>) -> ureq::Agent {
    use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
    let mut tls = TlsConfig::builder().provider(TlsProvider::Rustls);
    if let Some(pem) = ca_pem {
        let ca = Certificate::from_pem(pem.as_bytes()).unwrap().to_owned();
        tls = tls.root_certs(RootCerts::new_with_certs(&[ca]));
    }
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls.build())
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// A blocking HTTP call from a blocking thread: (status, JSON body or Null), or the
/// client's error.
async fn call(
    agent: &ureq::Agent,
    method: &str,
    url: String,
    body: Option<Value>,
) -> Result<(u16, Value), String> {
    let agent = agent.clone();
    let method = method.to_string();
    tokio::task::spawn_blocking(move || {
        let response = match (method.as_str(), body) {
            ("GET", _) => agent.get(&url).call(),
            ("POST", Some(b)) => agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(b.to_string()),
            ("PUT", Some(b)) => agent
                .put(&url)
                .header("Content-Type", "application/json")
                .send(b.to_string()),
            (m, _) => panic!("method {m}"),
        }
        .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let text = response.into_body().read_to_string().unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    })
    .await
    .unwrap()
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

async fn create_file_pipeline(
    s: &Secured,
    w: &RunningWorker,
    input: &Path,
    output: &Path,
    topic: &str,
) {
    for body in [
        json!({"name": "source", "config": {
            "connector.class": "FileStreamSource", "tasks.max": "1",
            "file": input.display().to_string(), "topic": topic}}),
        json!({"name": "sink", "config": {
            "connector.class": "FileStreamSink", "tasks.max": "1",
            "file": output.display().to_string(), "topics": topic}}),
    ] {
        let (status, answer) = call(
            &s.agent(),
            "POST",
            format!("{}/connectors", w.rest_url()),
            Some(body),
        )
        .await
        .expect("https request");
        assert_eq!(status, 201, "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_pipeline_over_sasl_ssl_with_an_https_rest_api() {
    let s = Secured::start().await;
    s.create_topic("secured-lines").await;
    let input = s.dir.path().join("input.txt");
    let output = s.dir.path().join("output.txt");
    std::fs::write(&input, "one\ntwo\nthree\n").unwrap();
    let w = start_standalone(
        s.standalone_props("alice-secret"),
        Vec::new(),
        Plugins::default(),
        None,
    )
    .await
    .expect("worker starts over SASL_SSL");
    assert!(
        w.rest_url().starts_with("https://127.0.0.1:"),
        "{}",
        w.rest_url()
    );

    // The REST API over TLS, verified with the test CA.
    let (status, info) = call(&s.agent(), "GET", format!("{}/", w.rest_url()), None)
        .await
        .expect("https GET /");
    assert_eq!(status, 200);
    assert!(info["kafka_cluster_id"].is_string(), "{info}");

    create_file_pipeline(&s, &w, &input, &output, "secured-lines").await;
    wait_until("the lines to pass source → topic → sink", || async {
        lines(&output) == ["one", "two", "three"]
    })
    .await;

    // Plain http to the https listener gets no answer; nor does a client that does not
    // trust the worker's certificate.
    let plain = w.rest_url().replacen("https://", "http://", 1);
    let e = call(&agent_trusting(None), "GET", format!("{plain}/"), None)
        .await
        .expect_err("plain http is refused");
    assert!(!e.is_empty());
    let e = call(
        &agent_trusting(None),
        "GET",
        format!("{}/", w.rest_url()),
        None,
    )
    .await
    .expect_err("an untrusted certificate is refused");
    assert!(
        e.to_lowercase().contains("certificate") || e.contains("UnknownIssuer"),
        "{e}"
    );
    w.shutdown().await;
    s.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixed_client_keys_override_the_worker_keys() {
    // Kafka Connect's way: the producers and consumers get their own `producer.` and
    // `consumer.` keys; a wrong top-level password with right prefixed ones fails the
    // start (the worker's own clients use the top-level keys) ...
    let s = Secured::start().await;
    let mut props = s.standalone_props("wrong-secret");
    for prefix in ["producer.", "consumer."] {
        for (k, v) in s.client_keys("alice-secret") {
            props.insert(format!("{prefix}{k}"), v);
        }
    }
    let e = start_standalone(props, Vec::new(), Plugins::default(), None)
        .await
        .err()
        .expect("the worker's own login fails")
        .to_string();
    assert!(e.contains("Authentication failed"), "{e}");

    // ... while right top-level keys with prefixed ones over them (merged key by key)
    // make a working pipeline.
    s.create_topic("prefixed").await;
    let input = s.dir.path().join("input.txt");
    let output = s.dir.path().join("output.txt");
    std::fs::write(&input, "a\nb\n").unwrap();
    let mut props = s.standalone_props("alice-secret");
    props.insert(
        "producer.sasl.jaas.config".into(),
        plain_jaas("alice", "alice-secret"),
    );
    props.insert("consumer.sasl.mechanism".into(), "PLAIN".into());
    let w = start_standalone(props, Vec::new(), Plugins::default(), None)
        .await
        .expect("worker starts");
    create_file_pipeline(&s, &w, &input, &output, "prefixed").await;
    wait_until("the lines to pass", || async {
        lines(&output) == ["a", "b"]
    })
    .await;
    w.shutdown().await;
    s.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_the_start_with_the_brokers_reason() {
    let s = Secured::start().await;
    let started = Instant::now();
    let e = start_standalone(
        s.standalone_props("not-alice-secret"),
        Vec::new(),
        Plugins::default(),
        None,
    )
    .await
    .err()
    .expect("a wrong password fails the start")
    .to_string();
    assert!(
        e.starts_with(&format!(
            "cannot connect to the Kafka cluster at bootstrap.servers={}: ",
            s.broker.bootstrap()
        )),
        "{e}"
    );
    assert!(e.contains("Authentication failed"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(20), "fails fast");

    // A trust store that does not hold the broker's CA: the TLS handshake fails.
    let other = TestPki::named("Another CA");
    let other_ca = s.dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, &other.ca_pem).unwrap();
    let mut props = s.standalone_props("alice-secret");
    props.insert(
        "ssl.truststore.location".into(),
        other_ca.display().to_string(),
    );
    let e = start_standalone(props, Vec::new(), Plugins::default(), None)
        .await
        .err()
        .expect("an untrusted broker fails the start")
        .to_string();
    assert!(e.contains("certificate verify failed"), "{e}");
    s.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_the_worker_cannot_act_on_fail_the_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new();
    let ca = pki.write_ca(dir.path());
    let not_a_store = dir.path().join("truststore.jks");
    std::fs::write(&not_a_store, b"\xfe\xed\xfe\xed not really a JKS file").unwrap();
    let base: Props = [
        // Nothing listens there: every case fails before connecting.
        ("bootstrap.servers", "127.0.0.1:9".to_string()),
        (
            "offset.storage.file.filename",
            dir.path().join("offsets").display().to_string(),
        ),
        ("listeners", "http://127.0.0.1:0".to_string()),
        (
            "key.converter",
            "org.apache.kafka.connect.storage.StringConverter".to_string(),
        ),
        (
            "value.converter",
            "org.apache.kafka.connect.storage.StringConverter".to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let sasl_ssl = [
        ("security.protocol", "SASL_SSL".to_string()),
        ("sasl.mechanism", "PLAIN".to_string()),
        ("sasl.jaas.config", plain_jaas("alice", "alice-secret")),
        ("ssl.truststore.type", "PEM".to_string()),
        ("ssl.truststore.location", ca.display().to_string()),
    ];
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (
            vec![("security.protocol", "KERBEROS".into())],
            "security.protocol: KERBEROS is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
        ),
        (
            vec![
                ("security.protocol", "SASL_PLAINTEXT".into()),
                ("sasl.mechanism", "GSSAPI".into()),
                ("sasl.kerberos.service.name", "kafka".into()),
            ],
            "sasl.mechanism: GSSAPI is not supported",
        ),
        (
            vec![("security.protocol", "SASL_PLAINTEXT".into())],
            "sasl.mechanism: GSSAPI (Kafka's default when it is unset) is not supported",
        ),
        (
            vec![
                ("security.protocol", "SASL_SSL".into()),
                ("sasl.mechanism", "SCRAM-SHA-512".into()),
            ],
            "sasl.jaas.config: not set; SASL SCRAM-SHA-512 needs one: org.apache.kafka.common.security.scram.ScramLoginModule",
        ),
        (
            vec![
                ("security.protocol", "SSL".into()),
                ("ssl.truststore.type", "JKS".into()),
                ("ssl.truststore.location", not_a_store.display().to_string()),
                ("ssl.truststore.password", "changeit".into()),
            ],
            "ssl.truststore.location: ",
        ),
        (
            vec![
                ("security.protocol", "SSL".into()),
                ("ssl.truststore.location", ca.display().to_string()),
                ("ssl.truststore.type", "PEM".into()),
                ("ssl.ca.location", "/etc/ssl/ca.pem".into()),
            ],
            "ssl.ca.location: unknown ssl setting",
        ),
        (
            vec![
                ("producer.security.protocol", "SASL_SSL".into()),
                ("producer.sasl.mechanism", "GSSAPI".into()),
            ],
            "producer.sasl.mechanism: GSSAPI is not supported",
        ),
        (
            vec![(
                "consumer.sasl.login.callback.handler.class",
                "com.example.Handler".into(),
            )]
            .into_iter()
            .chain(sasl_ssl.iter().cloned())
            .collect(),
            "consumer.sasl.login.callback.handler.class: not supported",
        ),
        (
            vec![("listeners", "https://127.0.0.1:0".into())],
            "ssl.keystore.location: an https listener needs a key store",
        ),
        (
            vec![
                ("listeners", "https://127.0.0.1:0".into()),
                ("listeners.https.ssl.truststore.type", "PEM".into()),
                (
                    "listeners.https.ssl.truststore.location",
                    ca.display().to_string(),
                ),
            ],
            "listeners.https.ssl.keystore.location: an https listener needs a key store",
        ),
        (
            vec![
                ("listeners", "https://127.0.0.1:0".into()),
                (
                    "listeners.https.ssl.client.authentication",
                    "required".into(),
                ),
            ],
            "listeners.https.ssl.client.authentication: unknown ssl setting",
        ),
        (
            vec![("listeners", "http://127.0.0.1:0,https://127.0.0.1:0".into())],
            "Moldau Connect serves one REST listener",
        ),
        (
            vec![("rest.advertised.listener", "https".into())],
            "rest.advertised.listener: https is not served",
        ),
    ];
    for (keys, expected) in cases {
        let mut props = base.clone();
        for (k, v) in &keys {
            props.insert(k.to_string(), v.clone());
        }
        let e = start_standalone(props, Vec::new(), Plugins::default(), None)
            .await
            .err()
            .unwrap_or_else(|| panic!("{keys:?} must fail the start"))
            .to_string();
        eprintln!("{e}");
        assert!(e.contains(expected), "{keys:?}: {e}");
    }

    // A distributed worker's group membership speaks PLAIN and SCRAM only (moldau-wire),
    // and its requests to other workers check their host names.
    let mut distributed = base.clone();
    distributed.remove("offset.storage.file.filename");
    for (k, v) in [
        ("group.id", "connect"),
        ("config.storage.topic", "configs"),
        ("offset.storage.topic", "offsets"),
        ("status.storage.topic", "status"),
    ] {
        distributed.insert(k.into(), v.into());
    }
    let oauth = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule \
                 required unsecuredLoginStringClaim_sub=\"alice\";";
    let worker_ks = pki.write_leaf(dir.path(), "worker", "worker", &["127.0.0.1"]);
    for (keys, expected) in [
        (
            vec![
                ("security.protocol", "SASL_PLAINTEXT".to_string()),
                ("sasl.mechanism", "OAUTHBEARER".into()),
                ("sasl.jaas.config", oauth.into()),
            ],
            "sasl.mechanism: OAUTHBEARER is not supported",
        ),
        (
            vec![
                ("listeners", "https://127.0.0.1:0".into()),
                ("ssl.keystore.type", "PEM".into()),
                (
                    "ssl.keystore.location",
                    worker_ks.key_store.display().to_string(),
                ),
                ("ssl.endpoint.identification.algorithm", "".into()),
            ],
            "ssl.endpoint.identification.algorithm: an empty value (no host name check) is \
             not supported",
        ),
    ] {
        let mut props = distributed.clone();
        for (k, v) in &keys {
            props.insert(k.to_string(), v.clone());
        }
        let e = start_distributed(props, Plugins::default(), None)
            .await
            .err()
            .unwrap_or_else(|| panic!("{keys:?} must fail the start"))
            .to_string();
        eprintln!("{e}");
        assert!(e.contains(expected), "{keys:?}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_listener_with_required_client_certificates() {
    // ssl.* without the listeners.https. prefix serve the listener too (Kafka's
    // fallback); ssl.client.auth=required refuses a client without a certificate.
    let s = Secured::start().await;
    let client = s
        .pki
        .write_leaf(s.dir.path(), "client", "client", &["localhost"]);
    let mut props = s.standalone_props("alice-secret");
    props.retain(|k, _| !k.starts_with("listeners.https."));
    props.insert("ssl.keystore.type".into(), "PEM".into());
    props.insert(
        "ssl.keystore.location".into(),
        s.worker_key_store.display().to_string(),
    );
    props.insert("ssl.client.auth".into(), "required".into());
    let w = start_standalone(props, Vec::new(), Plugins::default(), None)
        .await
        .expect("worker starts");
    let e = call(&s.agent(), "GET", format!("{}/", w.rest_url()), None)
        .await
        .expect_err("no client certificate");
    assert!(!e.is_empty());
    let with_cert = {
        use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};
        let ca = Certificate::from_pem(s.pki.ca_pem.as_bytes())
            .unwrap()
            .to_owned();
        let chain_pem = std::fs::read(&client.chain).unwrap();
        let chain: Vec<Certificate<'static>> = ureq::tls::parse_pem(&chain_pem)
            .filter_map(|i| match i {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
                _ => None,
            })
            .collect();
        let key = PrivateKey::from_pem(&std::fs::read(&client.key).unwrap())
            .unwrap()
            .to_owned();
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::new_with_certs(&[ca]))
            .client_cert(Some(ClientCert::new_with_certs(&chain, key)))
            .build();
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls)
            .build()
            .into()
    };
    let (status, _) = call(&with_cert, "GET", format!("{}/", w.rest_url()), None)
        .await
        .expect("with a client certificate");
    assert_eq!(status, 200);
    w.shutdown().await;
    s.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_workers_over_sasl_ssl_forward_over_https() {
    let s = Secured::start().await;
    let props = |n: usize| -> Props {
        let mut p: Props = [
            ("bootstrap.servers", s.broker.bootstrap()),
            ("group.id", "secured-connect".into()),
            ("config.storage.topic", "secured-configs".into()),
            ("offset.storage.topic", "secured-offsets".into()),
            ("status.storage.topic", "secured-status".into()),
            ("config.storage.replication.factor", "1".into()),
            ("offset.storage.replication.factor", "1".into()),
            ("status.storage.replication.factor", "1".into()),
            (
                "key.converter",
                "org.apache.kafka.connect.storage.StringConverter".into(),
            ),
            (
                "value.converter",
                "org.apache.kafka.connect.storage.StringConverter".into(),
            ),
            ("listeners", "https://127.0.0.1:0".into()),
            ("rest.advertised.host.name", "127.0.0.1".into()),
            ("listeners.https.ssl.keystore.type", "PEM".into()),
            (
                "listeners.https.ssl.keystore.location",
                s.worker_key_store.display().to_string(),
            ),
            ("listeners.https.ssl.truststore.type", "PEM".into()),
            (
                "listeners.https.ssl.truststore.location",
                s.ca.display().to_string(),
            ),
            ("client.id", format!("worker-{n}")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        p.extend(s.client_keys("alice-secret"));
        p
    };
    let w1 = start_distributed(props(1), Plugins::default(), None)
        .await
        .expect("first worker joins over SASL_SSL");
    let w2 = start_distributed(props(2), Plugins::default(), None)
        .await
        .expect("second worker joins over SASL_SSL");
    assert!(w1.rest_url().starts_with("https://"));
    // Both in the group, one the leader: a create on either (the follower forwards it to
    // the leader over https) succeeds.
    let input = s.dir.path().join("input.txt");
    std::fs::write(&input, "x\n").unwrap();
    let mut created = 0;
    for (i, w) in [&w1, &w2].into_iter().enumerate() {
        let body = json!({"name": format!("source-{i}"), "config": {
            "connector.class": "FileStreamSource", "tasks.max": "1",
            "file": input.display().to_string(), "topic": "distributed-lines"}});
        let url = format!("{}/connectors", w.rest_url());
        let deadline = Instant::now() + DEADLINE;
        loop {
            let (status, answer) = call(&s.agent(), "POST", url.clone(), Some(body.clone()))
                .await
                .expect("https request");
            if status == 201 {
                created += 1;
                break;
            }
            // Until the group has formed, Kafka's 409 (rebalance in progress) or 503.
            assert!(
                Instant::now() < deadline && (status == 409 || status == 503),
                "{status} {answer}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert_eq!(created, 2);
    wait_until("both connectors to be listed by each worker", || async {
        let mut ok = true;
        for w in [&w1, &w2] {
            let (_, list) = call(
                &s.agent(),
                "GET",
                format!("{}/connectors", w.rest_url()),
                None,
            )
            .await
            .expect("https request");
            ok &= list.as_array().is_some_and(|l| l.len() == 2);
        }
        ok
    })
    .await;
    w2.shutdown().await;
    w1.shutdown().await;
    s.broker.shutdown().await;
}
