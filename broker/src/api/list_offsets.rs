//! ListOffsets: the earliest (-2) and latest (-1) offsets, the offset of the largest timestamp
//! (-3), or the first offset at or after a timestamp.
//!
//! Timestamps are answered per record, as Kafka does: the log's time index finds the first batch
//! whose largest timestamp qualifies, and the records of that batch are then read to find the
//! first *record* at or after the target (or, for -3, the first record with the largest
//! timestamp), with that record's own offset and timestamp. Consumers seeking by time
//! (`offsetsForTimes`) otherwise start at the beginning of a batch and see records from before
//! the time they asked for.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::{code, log_error_code};
use crate::authorizer::{Operation, Requester, Resource};
use crate::broker::Broker;
use crate::log::batch::codec::{self, Codec};
use crate::log::batch::record::Records;
use crate::log::{BatchHeader, BATCH_HEADER_LEN};
use crate::topic::Partition;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

pub fn handle(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let read_committed = req.isolation_level == 1;
    let topics = req
        .topics
        .into_iter()
        .map(|wanted| {
            // DESCRIBE on the topic, as Kafka checks it.
            let allowed = broker.authorizer.authorize(
                who,
                Operation::Describe,
                &Resource::topic(wanted.name.0.as_str()),
            );
            let topic = broker.topics.get(wanted.name.0.as_str());
            // What a batch of this topic may decompress to (`max.message.bytes`).
            let limit = topic.as_ref().map_or(0, |t| {
                t.configs().log_config(&broker.config).max_batch_bytes
            });
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
                    if !allowed {
                        out.error_code = code(ResponseError::TopicAuthorizationFailed);
                        return out;
                    }
                    let Some(partition) =
                        topic.as_ref().and_then(|t| t.partition(p.partition_index))
                    else {
                        out.error_code = code(ResponseError::UnknownTopicOrPartition);
                        return out;
                    };
                    // read_committed (isolation level 1) ends at the last stable offset.
                    let found = match p.timestamp {
                        LATEST if read_committed => Ok(Some((partition.last_stable_offset(), -1))),
                        LATEST => Ok(Some((partition.high_watermark(), -1))),
                        EARLIEST => Ok(Some((partition.log_start_offset(), -1))),
                        MAX_TIMESTAMP => Ok(partition
                            .max_timestamp_offset()
                            .map(|found| in_batch(&partition, found, limit, |t| t == found.1))),
                        // read_committed: only an offset below the last stable offset, as Kafka.
                        ts if ts >= 0 => partition.offset_for_timestamp(ts).map(|found| {
                            found
                                .map(|found| in_batch(&partition, found, limit, |t| t >= ts))
                                .filter(|(offset, _)| {
                                    !read_committed || *offset < partition.last_stable_offset()
                                })
                        }),
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

/// Batches looked at past the one the index found, when its records no longer qualify (a
/// compacted batch keeps its header's largest timestamp after the record that had it is gone).
const MAX_BATCHES: usize = 16;

/// Refines `(batch offset, batch max timestamp)` to the first record from that batch on whose
/// timestamp satisfies `wanted`, as `(offset, timestamp)`. Falls back to the batch-level answer
/// if the batch cannot be read or decoded.
fn in_batch(
    partition: &Partition,
    found: (i64, i64),
    limit: usize,
    wanted: impl Fn(i64) -> bool,
) -> (i64, i64) {
    let mut position = found.0;
    for _ in 0..MAX_BATCHES {
        let Ok(read) = partition.read(position, 1) else {
            break;
        };
        let Some(header) = read
            .records
            .get(..BATCH_HEADER_LEN)
            .and_then(|h| BatchHeader::parse(h).ok())
        else {
            break;
        };
        if let Some(hit) = first_record(&read.records, &header, found.0, limit, &wanted) {
            return hit;
        }
        position = header.next_offset();
    }
    found
}

/// The first record of the batch at the start of `data`, at or after offset `from`, whose
/// timestamp (the batch's largest for LogAppendTime batches) satisfies `wanted`. Compressed
/// batches are decompressed with the log's bounded codecs, at most `limit` bytes
/// (`max.message.bytes`), so even a batch stored before records were validated cannot make this
/// allocate more than an honest batch.
fn first_record(
    data: &[u8],
    header: &BatchHeader,
    from: i64,
    limit: usize,
    wanted: &impl Fn(i64) -> bool,
) -> Option<(i64, i64)> {
    let codec = Codec::from_id(header.compression()).ok()?;
    let payload = data.get(BATCH_HEADER_LEN..header.total_size())?;
    let mut decompressed = Vec::new();
    let records = if codec == Codec::None {
        payload
    } else {
        codec::decompress(codec, payload, limit, &mut decompressed).ok()?;
        &decompressed[..]
    };
    for record in Records::new(records) {
        let record = record.ok()?;
        let offset = header.base_offset + i64::from(record.offset_delta);
        let ts = if header.is_log_append_time() {
            header.max_timestamp
        } else {
            header.base_timestamp.saturating_add(record.timestamp_delta)
        };
        if offset >= from && wanted(ts) {
            return Some((offset, ts));
        }
    }
    None
}
