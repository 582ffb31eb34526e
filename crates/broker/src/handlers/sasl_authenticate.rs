//! SaslAuthenticate outside a SASL exchange (see `sasl_handshake`): on a listener without
//! SASL, or after the connection authenticated, Kafka answers ILLEGAL_SASL_STATE.

use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::{Message, StrBytes, VersionRange};
use kafka_protocol::ResponseError;

pub const VERSIONS: VersionRange = SaslAuthenticateRequest::VERSIONS;

pub fn handle(_request: SaslAuthenticateRequest) -> SaslAuthenticateResponse {
    SaslAuthenticateResponse::default()
        .with_error_code(ResponseError::IllegalSaslState.code())
        .with_error_message(Some(StrBytes::from_static_str(
            "SaslAuthenticate request received after successful authentication",
        )))
}
