//! Brokers with a SASL_PLAINTEXT PLAIN listener (also the inter-broker one), and with the
//! StandardAuthorizer on: the setup the security, authorization, ACL and quota tests share.

use super::TestBroker;

/// PLAIN users `admin`, `alice` and `bob`; the node itself logs in as `admin`.
pub const PLAIN_JAAS: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required \
    username=\"admin\" password=\"admin-secret\" user_admin=\"admin-secret\" \
    user_alice=\"alice-secret\" user_bob=\"bob-secret\";";

pub const AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// A broker whose only listener is SASL_PLAINTEXT with PLAIN, plus `extra` overrides.
pub async fn sasl_plain_broker(extra: &[(&str, &str)]) -> TestBroker {
    let mut overrides = vec![
        ("listeners", "SASL_PLAINTEXT://127.0.0.1:0"),
        ("inter.broker.listener.name", "SASL_PLAINTEXT"),
        ("sasl.enabled.mechanisms", "PLAIN"),
        ("sasl.mechanism.inter.broker.protocol", "PLAIN"),
        (
            "listener.name.sasl_plaintext.plain.sasl.jaas.config",
            PLAIN_JAAS,
        ),
    ];
    overrides.extend_from_slice(extra);
    TestBroker::start_with(&overrides).await
}

/// [`sasl_plain_broker`] with the StandardAuthorizer; `admin` is a super user.
pub async fn secured_broker() -> TestBroker {
    sasl_plain_broker(&[
        ("authorizer.class.name", AUTHORIZER),
        ("super.users", "User:admin"),
    ])
    .await
}
