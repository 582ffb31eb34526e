//! SCRAM credentials as Kafka keeps them: AlterUserScramCredentials (upsertions carry the
//! salted password) and DescribeUserScramCredentials on the wire, as `kafka-configs
//! --entity-type users` sends them, with every per-user error Kafka gives; credentials that
//! survive a restart; credentials `storage format --add-scram` leaves, committed once at the
//! first start; and a SCRAM client authenticating with credentials set over the wire.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::wire::WireClient;
use common::TestBroker;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use moldau_broker::meta_properties::{self, InitialControllers};
use moldau_broker::{Broker, ServerConfig};
use moldau_metadata::MetadataRecord;
use moldau_security::scram::{self, ScramCredential, ScramMechanism};

const SHA256: i8 = 1;
const SHA512: i8 = 2;

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

/// An upsertion as Kafka's admin client makes one: a random salt and the salted password.
fn upsert(user: &str, mechanism: i8, password: &str, iterations: i32) -> ScramCredentialUpsertion {
    let salt = scram::random_salt();
    let salted = ScramMechanism::from_type_code(mechanism)
        .map(|m| scram::salted_password(m, password, &salt, iterations))
        .unwrap_or_else(|| b"any".to_vec());
    ScramCredentialUpsertion::default()
        .with_name(s(user))
        .with_mechanism(mechanism)
        .with_iterations(iterations)
        .with_salt(Bytes::from(salt))
        .with_salted_password(Bytes::from(salted))
}

fn delete(user: &str, mechanism: i8) -> ScramCredentialDeletion {
    ScramCredentialDeletion::default()
        .with_name(s(user))
        .with_mechanism(mechanism)
}

/// Each user's result as "user code message".
async fn alter(
    client: &mut WireClient,
    deletions: Vec<ScramCredentialDeletion>,
    upsertions: Vec<ScramCredentialUpsertion>,
) -> Vec<String> {
    let request = AlterUserScramCredentialsRequest::default()
        .with_deletions(deletions)
        .with_upsertions(upsertions);
    let response: AlterUserScramCredentialsResponse = client
        .call(ApiKey::AlterUserScramCredentials, 0, &request)
        .await;
    response
        .results
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r.user.as_str(),
                r.error_code,
                r.error_message.as_deref().unwrap_or("null")
            )
        })
        .collect()
}

/// Each user's result as "user code message [mechanism:iterations,...]".
async fn describe(client: &mut WireClient, users: Option<&[&str]>) -> Vec<String> {
    let request = DescribeUserScramCredentialsRequest::default().with_users(users.map(|users| {
        users
            .iter()
            .map(|u| UserName::default().with_name(s(u)))
            .collect()
    }));
    let response: DescribeUserScramCredentialsResponse = client
        .call(ApiKey::DescribeUserScramCredentials, 0, &request)
        .await;
    assert_eq!(response.error_code, 0);
    response
        .results
        .iter()
        .map(|r| {
            let infos: Vec<String> = r
                .credential_infos
                .iter()
                .map(|i| format!("{}:{}", i.mechanism, i.iterations))
                .collect();
            let message = r.error_message.as_deref().unwrap_or("null");
            format!(
                "{} {} {message} [{}]",
                r.user.as_str(),
                r.error_code,
                infos.join(",")
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_set_described_deleted_and_survive_a_restart() {
    let mut broker = TestBroker::start().await;
    let mut client = WireClient::connect(&broker.bootstrap()).await;

    assert!(describe(&mut client, None).await.is_empty());
    assert!(describe(&mut client, Some(&[])).await.is_empty());
    assert_eq!(
        describe(&mut client, Some(&["alice"])).await,
        vec!["alice 91 Attempt to describe a user credential that does not exist: alice []"]
    );

    assert_eq!(
        alter(
            &mut client,
            vec![],
            vec![
                upsert("alice", SHA256, "alice-secret", 4096),
                upsert("bob", SHA512, "bob-secret", 8192),
            ],
        )
        .await,
        vec!["alice 0 null", "bob 0 null"]
    );
    // One alteration per user and request: SCRAM-SHA-512 for Alice comes next.
    assert_eq!(
        alter(
            &mut client,
            vec![],
            vec![upsert("alice", SHA512, "alice-secret", 16384)],
        )
        .await,
        vec!["alice 0 null"]
    );
    assert_eq!(
        describe(&mut client, None).await,
        vec!["alice 0  [1:4096,2:16384]", "bob 0  [2:8192]"]
    );
    assert_eq!(
        describe(&mut client, Some(&["bob", "carol", "bob"])).await,
        vec![
            "bob 92 Cannot describe SCRAM credentials for the same user twice in a single request: bob []",
            "carol 91 Attempt to describe a user credential that does not exist: carol []",
        ]
    );

    // Every refusal, each leaving its user as it was; Hank's upsertion goes through.
    assert_eq!(
        alter(
            &mut client,
            vec![
                delete("frank", SHA256),
                delete("bob", SHA256),
                delete("alice", SHA256),
                delete("ivan", 0),
            ],
            vec![
                upsert("", SHA256, "x", 4096),
                upsert("carol", 0, "x", 4096),
                upsert("carol2", 3, "x", 4096),
                upsert("dave", SHA256, "x", 4095),
                upsert("erin", SHA512, "x", 16385),
                upsert("gina", SHA256, "x", 4096),
                upsert("gina", SHA512, "x", 4096),
                upsert("alice", SHA256, "new", 4096),
                upsert("hank", SHA256, "hank-secret", 4096),
            ],
        )
        .await,
        vec![
            "hank 0 null",
            "frank 91 Attempt to delete a user credential that does not exist",
            "bob 91 Attempt to delete a user credential that does not exist",
            "alice 92 A user credential cannot be altered twice in the same request",
            "ivan 33 Unknown SCRAM mechanism",
            " 93 Username must not be empty",
            "carol 33 Unknown SCRAM mechanism",
            "carol2 33 Unknown SCRAM mechanism",
            "dave 93 Too few iterations",
            "erin 93 Too many iterations",
            "gina 92 A user credential cannot be altered twice in the same request",
        ]
    );
    assert_eq!(
        describe(&mut client, None).await,
        vec![
            "alice 0  [1:4096,2:16384]",
            "bob 0  [2:8192]",
            "hank 0  [1:4096]",
        ]
    );

    // Deletions: Bob's only credential, then he is unknown; Hank's too.
    assert_eq!(
        alter(
            &mut client,
            vec![delete("bob", SHA512), delete("hank", SHA256)],
            vec![],
        )
        .await,
        vec!["bob 0 null", "hank 0 null"]
    );
    assert_eq!(
        describe(&mut client, Some(&["bob"])).await,
        vec!["bob 91 Attempt to describe a user credential that does not exist: bob []"]
    );
    assert_eq!(
        alter(&mut client, vec![delete("bob", SHA512)], vec![]).await,
        vec!["bob 91 Attempt to delete a user credential that does not exist"]
    );

    broker.restart().await;
    let mut client = WireClient::connect(&broker.bootstrap()).await;
    assert_eq!(
        describe(&mut client, None).await,
        vec!["alice 0  [1:4096,2:16384]"]
    );
    assert_eq!(
        alter(&mut client, vec![delete("alice", SHA256)], vec![]).await,
        vec!["alice 0 null"]
    );
    assert_eq!(
        describe(&mut client, Some(&["alice"])).await,
        vec!["alice 0  [2:16384]"]
    );
    broker.shutdown().await;
}

/// The metadata log's SCRAM credential records (`UserScramCredential` by user), in order.
fn scram_records_in_log(broker: &Broker) -> Vec<String> {
    use kafka_protocol::records::RecordBatchDecoder;
    let log = broker
        .logs()
        .into_iter()
        .find(|log| log.topic_partition().topic == "__cluster_metadata")
        .expect("the metadata log");
    let mut names = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let read = log
            .read(offset, 1 << 20, log.log_end_offset(), true)
            .expect("read the metadata log");
        let mut bytes = read.read_to_bytes().expect("metadata log bytes");
        let batches = RecordBatchDecoder::decode_all(&mut bytes).expect("whole batches");
        let mut next = offset;
        for record in batches.iter().flat_map(|b| b.records.iter()) {
            next = record.offset + 1;
            let Some(value) = &record.value else { continue };
            if let Ok(MetadataRecord::UserScramCredential { name, .. }) =
                MetadataRecord::decode(value)
            {
                names.push(name);
            }
        }
        assert!(
            next > offset,
            "no progress reading the metadata log at {offset}"
        );
        offset = next;
    }
    names
}

fn config(dir: &std::path::Path) -> ServerConfig {
    let overrides = [
        ("listeners", "PLAINTEXT://127.0.0.1:0".to_string()),
        ("log.dirs", dir.display().to_string()),
    ]
    .map(|(k, v)| (k.to_string(), v));
    ServerConfig::load(None, &overrides).expect("test config").0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_format_credentials_are_committed_once_at_the_first_start() {
    common::init_tracing();
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path());
    let records = meta_properties::parse_add_scram(&[
        "SCRAM-SHA-256=[name=alice,password=alice-secret]".to_string(),
        "SCRAM-SHA-512=[name=alice,iterations=8192,salt=\"MWx2NHBkbnc0ZndxN25vdGN4bTB5eTFrN3E=\",\
         saltedpassword=\"mT0yyUUxnlJaC99HXgRTSYlbuqa4FSGtJCJfTMvjYCE=\"]"
            .to_string(),
        "SCRAM-SHA-256=[name=admin,password=admin-secret,iterations=4096]".to_string(),
    ])
    .expect("valid --add-scram arguments");
    meta_properties::format_with_bootstrap(
        &config,
        &meta_properties::random_uuid(),
        false,
        &InitialControllers::None,
        &records,
    )
    .expect("format");

    let broker = Broker::start(config.clone()).await.expect("broker starts");
    let mut client = WireClient::connect(&broker.bound_addr().to_string()).await;
    assert_eq!(
        describe(&mut client, None).await,
        vec!["admin 0  [1:4096]", "alice 0  [1:4096,2:8192]"]
    );
    // The keys are those of the salted password given (Kafka's ScramParserTest values).
    let image = broker.metadata_image();
    let stored = image.scram_credential("alice", SHA512).unwrap();
    let salted: Vec<u8> = [
        -103i8, 61, 50, -55, 69, 49, -98, 82, 90, 11, -33, 71, 94, 4, 83, 73, -119, 91, -70, -90,
        -72, 21, 33, -83, 36, 34, 95, 76, -53, -29, 96, 33,
    ]
    .iter()
    .map(|b| *b as u8)
    .collect();
    let expected = ScramCredential::from_salted_password(
        ScramMechanism::Sha512,
        &salted,
        b"1lv4pdnw4fwq7notcxm0yy1k7q",
        8192,
    );
    assert_eq!(stored.stored_key.as_slice(), &expected.stored_key[..]);
    assert_eq!(stored.server_key.as_slice(), &expected.server_key[..]);
    assert_eq!(stored.salt.as_slice(), b"1lv4pdnw4fwq7notcxm0yy1k7q");
    assert_eq!(
        scram_records_in_log(&broker),
        vec!["alice", "alice", "admin"]
    );
    // A credential deleted after the first start stays deleted.
    assert_eq!(
        alter(&mut client, vec![delete("admin", SHA256)], vec![]).await,
        vec!["admin 0 null"]
    );
    drop(client);
    broker.shutdown().await.expect("clean shutdown");

    // Restarted: nothing committed again.
    let broker = Broker::start(config).await.expect("broker restarts");
    let mut client = WireClient::connect(&broker.bound_addr().to_string()).await;
    assert_eq!(
        describe(&mut client, None).await,
        vec!["alice 0  [1:4096,2:8192]"]
    );
    assert_eq!(
        scram_records_in_log(&broker),
        vec!["alice", "alice", "admin"]
    );
    drop(client);
    broker.shutdown().await.expect("clean shutdown");
}

/// A port that was free a moment ago (for a second listener, whose port the harness
/// does not report).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scram_client_authenticates_with_credentials_set_over_the_wire() {
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::{FutureProducer, FutureRecord};

    let sasl_port = free_port();
    let listeners = format!("PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:{sasl_port}");
    let broker = TestBroker::start_with(&[
        ("listeners", &listeners),
        ("sasl.enabled.mechanisms", "SCRAM-SHA-256,SCRAM-SHA-512"),
    ])
    .await;
    let mut client = WireClient::connect(&broker.bootstrap()).await;
    assert_eq!(
        alter(
            &mut client,
            vec![],
            vec![
                upsert("alice", SHA256, "alice-secret", 4096),
                upsert("bob", SHA512, "bob-secret", 8192),
            ],
        )
        .await,
        vec!["alice 0 null", "bob 0 null"]
    );
    let producer_for = |mechanism: &str, user: &str, password: &str| -> FutureProducer {
        ClientConfig::new()
            .set("bootstrap.servers", format!("127.0.0.1:{sasl_port}"))
            .set("security.protocol", "sasl_plaintext")
            .set("sasl.mechanism", mechanism)
            .set("sasl.username", user)
            .set("sasl.password", password)
            .set("message.timeout.ms", "5000")
            .create()
            .expect("producer")
    };
    for (mechanism, user, password) in [
        ("SCRAM-SHA-256", "alice", "alice-secret"),
        ("SCRAM-SHA-512", "bob", "bob-secret"),
    ] {
        producer_for(mechanism, user, password)
            .send(
                FutureRecord::to("scram").key("k").payload(user),
                Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("{user} with {mechanism}: {e}"));
    }
    // A wrong password, and Alice on the mechanism she has no credential for.
    for (mechanism, user, password) in [
        ("SCRAM-SHA-256", "alice", "wrong"),
        ("SCRAM-SHA-512", "alice", "alice-secret"),
    ] {
        let sent = producer_for(mechanism, user, password)
            .send(
                FutureRecord::to("scram").key("k").payload(user),
                Duration::from_secs(5),
            )
            .await;
        assert!(sent.is_err(), "{user} with {mechanism} got in");
    }
    // Deleted: Alice cannot log in any more.
    assert_eq!(
        alter(&mut client, vec![delete("alice", SHA256)], vec![]).await,
        vec!["alice 0 null"]
    );
    let sent = producer_for("SCRAM-SHA-256", "alice", "alice-secret")
        .send(
            FutureRecord::to("scram").key("k").payload("alice"),
            Duration::from_secs(5),
        )
        .await;
    assert!(sent.is_err(), "a deleted credential still authenticates");
    broker.shutdown().await;
}
