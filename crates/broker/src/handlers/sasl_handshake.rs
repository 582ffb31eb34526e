//! SaslHandshake outside a SASL exchange. On SASL listeners the connection's
//! authenticator (`crate::sasl`) takes every SaslHandshake; one that reaches a handler came
//! over a listener without SASL, which Kafka answers with ILLEGAL_SASL_STATE.

use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;

pub const VERSIONS: VersionRange = SaslHandshakeRequest::VERSIONS;

pub fn handle(_request: SaslHandshakeRequest) -> SaslHandshakeResponse {
    SaslHandshakeResponse::default().with_error_code(ResponseError::IllegalSaslState.code())
}
