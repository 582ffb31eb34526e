//! Kafka's security model, with no sockets: what a listener's `ssl.*` keys make of rustls,
//! the SASL mechanisms' server side, Java client properties made into librdkafka's
//! (`client_properties`), how a connection's principal is named, and how ACLs
//! decide. The broker wires these into its connections and handlers.

pub mod acl;
pub mod client_properties;
pub mod jaas;
pub mod oauthbearer;
pub mod plain;
pub mod principal;
pub mod scram;
pub mod tls;

#[cfg(any(test, feature = "test-pki"))]
pub mod test_pki;
