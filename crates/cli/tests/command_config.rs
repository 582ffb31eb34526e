//! `--command-config` as Kafka's tools take it: a node with a PLAINTEXT, an SSL (mutual
//! TLS) and a SASL_SSL (PLAIN) listener, and the client commands through Java client
//! properties files, one with a PEM trust store, one with PKCS12 trust and key stores
//! (written as keytool writes them). librdkafka's commands (topics, produce, consume) and
//! the protocol client's (transactions) both. Certificates are made by the test.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use moldau_security::test_pki::TestPki;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};

const PLAIN_JAAS_BROKER: &str = "org.apache.kafka.common.security.plain.PlainLoginModule \
    required username=\"admin\" password=\"admin-secret\" user_admin=\"admin-secret\" \
    user_alice=\"alice-secret\";";

struct SecureNode {
    server: Server,
    ssl: String,
    sasl_ssl: String,
    dir: tempfile::TempDir,
    pki: TestPki,
}

fn start(dir: tempfile::TempDir) -> SecureNode {
    let pki = TestPki::new();
    let broker = pki.write_leaf(dir.path(), "broker", "broker", &["localhost", "127.0.0.1"]);
    let ca = pki.write_ca(dir.path());
    let (plain, ssl, sasl_ssl) = (free_port(), free_port(), free_port());
    let listeners = format!(
        "listeners=PLAINTEXT://127.0.0.1:{plain},SSL://127.0.0.1:{ssl},SASL_SSL://127.0.0.1:{sasl_ssl}"
    );
    let overrides = [
        listeners,
        "transaction.state.log.num.partitions=3".to_string(),
        "ssl.keystore.type=PEM".to_string(),
        format!("ssl.keystore.location={}", broker.key_store.display()),
        "ssl.truststore.type=PEM".to_string(),
        format!("ssl.truststore.location={}", ca.display()),
        "listener.name.ssl.ssl.client.auth=required".to_string(),
        "sasl.enabled.mechanisms=PLAIN".to_string(),
        format!("listener.name.sasl_ssl.plain.sasl.jaas.config={PLAIN_JAAS_BROKER}"),
    ];
    let mut args: Vec<&str> = Vec::new();
    for o in &overrides {
        args.push("--override");
        args.push(o);
    }
    let mut server = Server::spawn(dir.path(), &[], &args);
    server.wait_until_accepting();
    SecureNode {
        server,
        ssl: format!("127.0.0.1:{ssl}"),
        sasl_ssl: format!("127.0.0.1:{sasl_ssl}"),
        dir,
        pki,
    }
}

impl SecureNode {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `moldau <args> --bootstrap-server <bootstrap> --command-config <config> [extra]`.
    fn run(&self, bootstrap: &str, config: &Path, args: &[&str], input: &str) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .arg("--bootstrap-server")
            .arg(bootstrap)
            .arg("--command-config")
            .arg(config);
        run(cmd, input)
    }

    fn ok(&self, bootstrap: &str, config: &Path, args: &[&str], input: &str) -> Output {
        let out = self.run(bootstrap, config, args, input);
        out.assert_success(args, &self.server);
        assert!(
            !out.stderr.contains("WARN"),
            "no warnings expected for {args:?}:\n{}",
            out.stderr
        );
        out
    }
}

/// The SASL_SSL client's file: PLAIN in sasl.jaas.config, the CA as a PEM trust store.
fn sasl_ssl_properties(node: &SecureNode, password: &str) -> String {
    format!(
        "# kafka-topics --command-config style\n\
         security.protocol=SASL_SSL\n\
         sasl.mechanism=PLAIN\n\
         sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \\\n    \
         username=\"alice\" \\\n    password=\"{password}\";\n\
         ssl.truststore.type=PEM\n\
         ssl.truststore.location={}\n\
         client.id=secure-ops\n",
        node.path("ca.pem").display()
    )
}

/// PKCS12 files as keytool writes them: the trust store holds the CA as a trusted
/// certificate, the key store the client's key and chain.
fn write_pkcs12_stores(node: &SecureNode) -> (PathBuf, PathBuf) {
    use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
    let ca_der = CertificateDer::from_pem_slice(node.pki.ca_pem.as_bytes()).unwrap();
    let mut trust = KeyStore::new();
    trust.add_entry(
        "caroot",
        KeyStoreEntry::Certificate(Certificate::from_der(ca_der.as_ref()).unwrap()),
    );
    let truststore = node.path("client.truststore.p12");
    std::fs::write(&truststore, trust.writer("trust-pass").write().unwrap()).unwrap();

    let (chain_pem, key_pem, _) = node.pki.leaf_pem("ops", &[]);
    let chain: Vec<Certificate> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .map(|c| Certificate::from_der(c.unwrap().as_ref()).unwrap())
        .collect();
    let key = PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let mut keys = KeyStore::new();
    keys.add_entry(
        "ops",
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(
            b"ops-key".to_vec(),
            PrivateKey::from_der(key.secret_pkcs8_der()).unwrap(),
            chain,
        )),
    );
    let keystore = node.path("client.keystore.p12");
    std::fs::write(&keystore, keys.writer("key-pass").write().unwrap()).unwrap();
    (truststore, keystore)
}

/// A transaction left open by a producer on the PLAINTEXT listener, for `transactions list`.
fn open_transaction(node: &SecureNode, topic: &str) -> BaseProducer {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", node.server.addr.to_string())
        .set("transactional.id", "secure-txn")
        .set("transaction.timeout.ms", "600000")
        .create()
        .unwrap();
    let timeout = Duration::from_secs(30);
    producer.init_transactions(timeout).unwrap();
    producer.begin_transaction().unwrap();
    producer
        .send(BaseRecord::<(), str>::to(topic).payload("pending"))
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(timeout).unwrap();
    producer
}

#[test]
fn client_commands_over_ssl_and_sasl_ssl_with_command_config() {
    let node = start(tempfile::tempdir().unwrap());
    let sasl = node.write(
        "sasl-ssl.properties",
        &sasl_ssl_properties(&node, "alice-secret"),
    );
    let (truststore, keystore) = write_pkcs12_stores(&node);
    // Types left to Kafka's default (JKS), which reads PKCS12 files as Java does.
    let mtls = node.write(
        "ssl.properties",
        &format!(
            "security.protocol=SSL\n\
             ssl.truststore.location={}\n\
             ssl.truststore.password=trust-pass\n\
             ssl.keystore.location={}\n\
             ssl.keystore.password=key-pass\n\
             ssl.key.password=key-pass\n\
             ssl.endpoint.identification.algorithm=https\n",
            truststore.display(),
            keystore.display()
        ),
    );

    // librdkafka's commands.
    node.ok(
        &node.sasl_ssl,
        &sasl,
        &["topics", "create", "--topic", "secure", "--partitions", "2"],
        "",
    );
    let listed = node.ok(&node.ssl, &mtls, &["topics", "list"], "").stdout;
    assert!(listed.lines().any(|l| l.starts_with("secure")), "{listed}");
    node.ok(
        &node.sasl_ssl,
        &sasl,
        &["produce", "--topic", "secure", "--partition", "1"],
        "one\ntwo\nthree\n",
    );
    let consumed = node
        .ok(
            &node.ssl,
            &mtls,
            &[
                "consume",
                "--topic",
                "secure",
                "--partition",
                "1",
                "--from-beginning",
                "--max-messages",
                "3",
                "--timeout-ms",
                "20000",
            ],
            "",
        )
        .stdout;
    assert_eq!(
        consumed.lines().collect::<Vec<_>>(),
        ["one", "two", "three"]
    );

    // The protocol client's: transactions over SASL_SSL and over mutual TLS.
    let _producer = open_transaction(&node, "secure");
    for (bootstrap, config) in [(&node.sasl_ssl, &sasl), (&node.ssl, &mtls)] {
        let out = node.ok(
            bootstrap,
            config,
            &["transactions", "list", "-o", "json"],
            "",
        );
        let listed: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let ids: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["transactional_id"].as_str())
            .collect();
        assert_eq!(ids, ["secure-txn"], "{listed}");
        let described = node.ok(
            bootstrap,
            config,
            &[
                "transactions",
                "describe",
                "--transactional-id",
                "secure-txn",
            ],
            "",
        );
        assert!(described.stdout.contains("Ongoing"), "{}", described.stdout);
    }
}

#[test]
fn wrong_passwords_and_bad_files_are_one_line_errors() {
    let node = start(tempfile::tempdir().unwrap());
    let wrong = node.write("wrong.properties", &sasl_ssl_properties(&node, "not-it"));

    // The protocol client reports the broker's own message.
    let out = node.run(&node.sasl_ssl, &wrong, &["transactions", "list"], "");
    out.assert_one_line_error(1, "Invalid username or password");
    assert!(
        out.stderr
            .contains("SASL PLAIN authentication with 127.0.0.1:"),
        "{}",
        out.stderr
    );
    // librdkafka's commands too, instead of "is a broker running?".
    let out = node.run(
        &node.sasl_ssl,
        &wrong,
        &["topics", "list", "--request-timeout-ms", "5000"],
        "",
    );
    out.assert_one_line_error(1, "Invalid username or password");

    // -X wins over the file.
    for args in [&["transactions", "list"][..], &["topics", "list"][..]] {
        let mut all = args.to_vec();
        all.extend(["-X", "sasl.password=alice-secret"]);
        node.ok(&node.sasl_ssl, &wrong, &all, "");
    }

    // A broker certificate the trust store does not vouch for.
    let stranger = TestPki::named("Another CA").ca_pem;
    let untrusted = node.write(
        "untrusted.properties",
        &format!(
            "security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.certificates={}\n",
            stranger.trim().replace('\n', "\\n\\\n")
        ),
    );
    let out = node.run(&node.ssl, &untrusted, &["transactions", "list"], "");
    out.assert_one_line_error(1, "TLS handshake with 127.0.0.1:");

    // The file itself: missing, a bad line, a key that would change security unseen.
    let missing = node.path("missing.properties");
    for args in [&["transactions", "list"][..], &["topics", "list"][..]] {
        let out = node.run(&node.sasl_ssl, &missing, args, "");
        let code = if args[0] == "transactions" { 2 } else { 1 };
        out.assert_one_line_error(
            code,
            &format!("cannot read --command-config {}", missing.display()),
        );
    }
    let bad = node.write("bad.properties", "security.protocol=SSL\n\n=oops\n");
    let out = node.run(&node.ssl, &bad, &["topics", "list"], "");
    out.assert_one_line_error(1, &format!("--command-config {}, line 3:", bad.display()));
    let handler = node.write(
        "handler.properties",
        &format!(
            "{}sasl.login.callback.handler.class=com.example.Login\n",
            sasl_ssl_properties(&node, "alice-secret")
        ),
    );
    let out = node.run(
        &node.sasl_ssl,
        &handler,
        &["produce", "--topic", "x"],
        "a\n",
    );
    out.assert_one_line_error(1, "sasl.login.callback.handler.class: not supported");
}
