//! ApiVersions: the first request of every client, answered from the table in
//! `protocol::versions`.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::ApiVersionsResponse;

use crate::protocol::versions::SUPPORTED;

/// Our API ranges, with `error_code` (0, or UNSUPPORTED_VERSION when the client asked for a
/// version of ApiVersions newer than ours).
pub fn response(error_code: i16) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(
            SUPPORTED
                .iter()
                .map(|&(key, min, max)| {
                    ApiVersion::default()
                        .with_api_key(key as i16)
                        .with_min_version(min)
                        .with_max_version(max)
                })
                .collect(),
        )
}
