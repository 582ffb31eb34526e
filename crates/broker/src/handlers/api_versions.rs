//! ApiVersions: which APIs and versions this broker serves.

use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;

use super::str_bytes;
use crate::api::{RequestContext, SUPPORTED_APIS};

pub const VERSIONS: VersionRange = ApiVersionsRequest::VERSIONS;

/// The metadata version this broker's records correspond to (Kafka 4.0's 4.0-IV3).
const METADATA_VERSION_LEVEL: i16 = 25;

pub fn handle(ctx: &RequestContext, request: ApiVersionsRequest) -> ApiVersionsResponse {
    let mut response = base_response();
    if ctx.api_version >= 3 && !valid_client_software(&request) {
        response.error_code = ResponseError::InvalidRequest.code();
        return response;
    }
    response.supported_features = vec![SupportedFeatureKey::default()
        .with_name(str_bytes("metadata.version"))
        .with_min_version(1)
        .with_max_version(METADATA_VERSION_LEVEL)];
    response.finalized_features_epoch = 0;
    response.finalized_features = vec![FinalizedFeatureKey::default()
        .with_name(str_bytes("metadata.version"))
        .with_min_version_level(METADATA_VERSION_LEVEL)
        .with_max_version_level(METADATA_VERSION_LEVEL)];
    response
}

/// The v0-format answer to an ApiVersions request of a version this broker does not have.
pub fn unsupported_version_response() -> ApiVersionsResponse {
    let mut response = base_response();
    response.error_code = ResponseError::UnsupportedVersion.code();
    response
}

fn base_response() -> ApiVersionsResponse {
    let mut response = ApiVersionsResponse::default();
    response.api_keys = SUPPORTED_APIS
        .iter()
        .map(|(key, range)| {
            ApiVersion::default()
                .with_api_key(*key as i16)
                .with_min_version(range.min)
                .with_max_version(range.max)
        })
        .collect();
    response
}

/// KIP-511: v3+ clients name their software; Kafka rejects names outside [a-zA-Z0-9.-].
fn valid_client_software(request: &ApiVersionsRequest) -> bool {
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    };
    valid(&request.client_software_name) && valid(&request.client_software_version)
}
