//! Fetch: reads whole record batches below each partition's high watermark, honouring
//! `max_bytes` and `partition_max_bytes` (the first batch always goes out whole, as KIP-74 asks,
//! so a consumer can always progress), and parks until `min_bytes` are there or `max_wait_ms`
//! has passed. A parked fetch is a future of its own and holds up no other connection.
//!
//! The wait is capped by `--max-fetch-wait-ms` (a client may ask for 2^31-1 ms; an early answer
//! with what there is is always allowed, and the client simply fetches again) and ends at once
//! when the broker shuts down, so no socket is held for a fetch nobody will see answered.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId};
use tokio::time::Instant;

use super::{code, log_error_code};
use crate::authorizer::{Operation, Requester, Resource};
use crate::broker::Broker;
use crate::topic::Isolation;

pub async fn handle(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: FetchRequest,
    _version: i16,
) -> FetchResponse {
    // READ on each topic, decided once for the whole long poll.
    let refused: HashSet<String> = req
        .topics
        .iter()
        .map(|t| t.topic.0.as_str())
        .filter(|t| {
            !broker
                .authorizer
                .authorize(who, Operation::Read, &Resource::topic(*t))
        })
        .map(str::to_string)
        .collect();
    let max_wait = u64::try_from(req.max_wait_ms)
        .unwrap_or(0)
        .min(broker.config.max_fetch_wait_ms);
    let deadline = Instant::now() + Duration::from_millis(max_wait);
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    let mut changes = broker.flusher.subscribe();
    loop {
        changes.borrow_and_update();
        let (response, bytes, failed) = read_all(broker, &req, &refused);
        if bytes >= min_bytes
            || failed
            || Instant::now() >= deadline
            || broker.stopping.is_cancelled()
        {
            for topic in &response.responses {
                let bytes: usize = topic
                    .partitions
                    .iter()
                    .filter_map(|p| p.records.as_ref().map(|r| r.len()))
                    .sum();
                broker.metrics.fetched(topic.topic.0.as_str(), bytes as u64);
            }
            return response;
        }
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    tokio::time::sleep_until(deadline).await;
                }
            }
            _ = tokio::time::sleep_until(deadline) => {}
            _ = broker.stopping.cancelled() => {}
        }
    }
}

/// One pass over the requested partitions: the response, the record bytes in it, and whether any
/// partition answered with an error (which ends the long poll, as in Kafka).
fn read_all(
    broker: &Arc<Broker>,
    req: &FetchRequest,
    refused: &HashSet<String>,
) -> (FetchResponse, usize, bool) {
    let max_bytes = usize::try_from(req.max_bytes).unwrap_or(0);
    // read_committed (1): below the last stable offset, with the aborted transactions listed.
    let isolation = if req.isolation_level == 1 {
        Isolation::ReadCommitted
    } else {
        Isolation::ReadUncommitted
    };
    let mut total = 0usize;
    let mut failed = false;
    let mut responses = Vec::with_capacity(req.topics.len());
    for wanted in &req.topics {
        let topic = broker.topics.get(wanted.topic.0.as_str());
        let mut partitions = Vec::with_capacity(wanted.partitions.len());
        for fp in &wanted.partitions {
            let mut out = PartitionData::default().with_partition_index(fp.partition);
            if refused.contains(wanted.topic.0.as_str()) {
                out.error_code = code(ResponseError::TopicAuthorizationFailed);
                out.high_watermark = -1;
                failed = true;
                partitions.push(out);
                continue;
            }
            let Some(partition) = topic.as_ref().and_then(|t| t.partition(fp.partition)) else {
                out.error_code = code(ResponseError::UnknownTopicOrPartition);
                out.high_watermark = -1;
                failed = true;
                partitions.push(out);
                continue;
            };
            let partition_max = usize::try_from(fp.partition_max_bytes).unwrap_or(0);
            let limit = partition_max.min(max_bytes.saturating_sub(total));
            let first = total == 0;
            if limit == 0 && !first {
                out.high_watermark = partition.high_watermark();
                out.last_stable_offset = partition.last_stable_offset();
                out.log_start_offset = partition.log_start_offset();
                partitions.push(out);
                continue;
            }
            match partition.read_isolated(fp.fetch_offset, limit.max(1), isolation) {
                Ok(read) => {
                    out.high_watermark = read.high_watermark;
                    out.last_stable_offset = read.last_stable_offset;
                    out.log_start_offset = read.log_start_offset;
                    if isolation == Isolation::ReadCommitted {
                        out.aborted_transactions = Some(
                            read.aborted
                                .iter()
                                .map(|a| {
                                    AbortedTransaction::default()
                                        .with_producer_id(ProducerId(a.producer_id))
                                        .with_first_offset(a.first_offset)
                                })
                                .collect(),
                        );
                    }
                    // Past the first partition with data, an oversized batch waits for a fetch in
                    // which it comes first.
                    if first || read.records.len() <= limit {
                        total += read.records.len();
                        out.records = Some(read.records);
                    }
                }
                Err(e) => {
                    out.error_code = log_error_code(&e);
                    out.high_watermark = partition.high_watermark();
                    out.last_stable_offset = partition.last_stable_offset();
                    out.log_start_offset = partition.log_start_offset();
                    failed = true;
                }
            }
            partitions.push(out);
        }
        responses.push(
            FetchableTopicResponse::default()
                .with_topic(wanted.topic.clone())
                .with_topic_id(wanted.topic_id)
                .with_partitions(partitions),
        );
    }
    (
        FetchResponse::default().with_responses(responses),
        total,
        failed,
    )
}
