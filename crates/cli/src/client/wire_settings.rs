//! The settings of the commands that speak the protocol themselves (`moldau_wire`): their
//! security from the command's client properties (`--command-config` translated to
//! librdkafka's names, then `-X`).

use moldau_wire::{Properties, WireSecurity};

use super::command_config::ClientProperties;

/// The `-X` properties these commands honour (librdkafka's names); any other `-X` is
/// refused, as it would change nothing here.
pub const WIRE_PROPERTIES: &[&str] = &[
    "client.id",
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "ssl.ca.location",
    "ssl.ca.pem",
    "ssl.certificate.location",
    "ssl.certificate.pem",
    "ssl.key.location",
    "ssl.key.pem",
    "ssl.key.password",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.endpoint.identification.algorithm",
];

impl Properties for ClientProperties {
    fn get(&self, key: &str) -> Option<&str> {
        ClientProperties::get(self, key)
    }
}

/// From the command's client properties (librdkafka's names). `-X` properties these
/// commands cannot honour are refused; the command config's other keys are not theirs to
/// judge (librdkafka's commands use them).
pub fn wire_security(properties: &ClientProperties) -> anyhow::Result<WireSecurity> {
    if let Some(key) = properties
        .cli_keys()
        .iter()
        .find(|k| !WIRE_PROPERTIES.contains(&k.as_str()))
    {
        anyhow::bail!(
            "-X {key} is not supported by this command, which talks to the brokers \
             without librdkafka (it honours --command-config and -X {})",
            WIRE_PROPERTIES.join(", ")
        );
    }
    Ok(WireSecurity::from_librdkafka(properties)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_needs_nothing() {
        let security = wire_security(&ClientProperties::from_cli(&[("client.id", "x")])).unwrap();
        assert!(security.tls.is_none() && security.sasl.is_none());
    }

    #[test]
    fn other_cli_properties_are_refused() {
        let e = wire_security(&ClientProperties::from_cli(&[("acks", "all")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("-X acks is not supported by this command"),
            "{e}"
        );
    }

    #[test]
    fn honoured_cli_properties_reach_the_settings() {
        let login = wire_security(&ClientProperties::from_cli(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "alice"),
            ("sasl.password", "secret"),
        ]))
        .unwrap()
        .sasl
        .unwrap();
        assert_eq!(login.mechanism, moldau_wire::SaslMechanism::Plain);
        assert_eq!(login.username, "alice");
    }
}
