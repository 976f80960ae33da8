//! ListOffsets: the earliest (-2) and latest (-1) offsets, the offset of the largest timestamp
//! (-3), or the first offset at or after a timestamp.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::{code, log_error_code};
use crate::broker::Broker;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

pub fn handle(broker: &Arc<Broker>, req: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|wanted| {
            let topic = broker.topics.get(wanted.name.0.as_str());
            let partitions = wanted
                .partitions
                .into_iter()
                .map(|p| {
                    let mut out = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1);
                    if version >= 4 {
                        out.leader_epoch = 0;
                    }
                    let Some(partition) =
                        topic.as_ref().and_then(|t| t.partition(p.partition_index))
                    else {
                        out.error_code = code(ResponseError::UnknownTopicOrPartition);
                        return out;
                    };
                    // With no transactions the last stable offset is the high watermark, so both
                    // isolation levels see the same end.
                    let found = match p.timestamp {
                        LATEST => Ok(Some((partition.high_watermark(), -1))),
                        EARLIEST => Ok(Some((partition.log_start_offset(), -1))),
                        MAX_TIMESTAMP => Ok(partition.max_timestamp_offset()),
                        ts if ts >= 0 => partition.offset_for_timestamp(ts),
                        other => {
                            tracing::debug!(timestamp = other, "unsupported ListOffsets timestamp");
                            out.error_code = code(ResponseError::UnsupportedVersion);
                            return out;
                        }
                    };
                    match found {
                        Ok(Some((offset, timestamp))) => {
                            out.offset = offset;
                            out.timestamp = timestamp;
                        }
                        Ok(None) => {}
                        Err(e) => out.error_code = log_error_code(&e),
                    }
                    out
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(wanted.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
