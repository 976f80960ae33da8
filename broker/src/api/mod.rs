//! One module per Kafka API: each takes the decoded request and builds the response, with Kafka's
//! error codes for everything a client can get wrong.

pub mod acls;
pub mod api_versions;
pub mod cluster;
pub mod configs;
pub mod delete_records;
pub mod fetch;
pub mod groups;
pub mod init_producer_id;
pub mod list_offsets;
pub mod log_dirs;
pub mod metadata;
pub mod offsets;
pub mod produce;
pub mod scram;
pub mod topics;
pub mod txn;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

/// The error code of a successful answer.
pub const NONE: i16 = 0;

pub(crate) fn code(e: ResponseError) -> i16 {
    e.code()
}

pub(crate) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

pub(crate) fn topic_name(s: impl Into<String>) -> TopicName {
    TopicName(str_bytes(s))
}

/// The Kafka error code for a storage error.
pub(crate) fn log_error_code(e: &crate::log::LogError) -> i16 {
    use crate::log::LogError as L;
    match e {
        L::CorruptMessage(_) => code(ResponseError::CorruptMessage),
        L::MessageTooLarge { .. } => code(ResponseError::MessageTooLarge),
        L::OffsetOutOfRange { .. } => code(ResponseError::OffsetOutOfRange),
        _ => code(ResponseError::KafkaStorageError),
    }
}
