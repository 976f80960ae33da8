//! Produce: validates and appends each partition's record batches in request order, then (for
//! acks=1 and acks=all) answers once the flusher has made them durable. acks=0 gets no answer.
//!
//! Every record is checked before anything of a partition is stored (see
//! [`validator`](crate::log::batch::validator)); a refused partition gets Kafka's error code,
//! its `error_message`, and KIP-467's `record_errors` naming the offending records (v8+).
//! Clients may not append to Kafka's internal topics (`__consumer_offsets`,
//! `__transaction_state`): the broker writes its committed offsets through the log directly.

use std::future::Future;
use std::sync::Arc;

use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::{code, log_error_code, str_bytes};
use crate::authorizer::{Operation, Requester, Resource};
use crate::broker::Broker;
use crate::log::batch::codec::{Codec, CodecError};
use crate::log::batch::validator::ValidationError;
use crate::log::batch::BatchHeader;
use crate::log::LogError;
use crate::topic::name::is_internal;
use crate::topic::{AppendError, Partition};

struct Pending {
    response: PartitionProduceResponse,
    /// Set when records were appended and must be committed before answering.
    appended: Option<Arc<Partition>>,
}

/// Appends now; the returned future resolves to the response once it may be sent.
pub fn handle(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: ProduceRequest,
    version: i16,
) -> impl Future<Output = Option<ProduceResponse>> + Send + 'static {
    let acks = req.acks;
    let acks_valid = matches!(acks, -1..=1);
    // Transactional batches need WRITE on their transactional id, every batch WRITE on its
    // topic (checked before the topic's existence, as Kafka does).
    let txn_refused = req.transactional_id.as_ref().is_some_and(|id| {
        !broker.authorizer.authorize(
            who,
            Operation::Write,
            &Resource::transactional_id(id.as_str()),
        )
    });
    let mut topics = Vec::with_capacity(req.topic_data.len());
    for topic_data in req.topic_data {
        let topic_allowed = broker.authorizer.authorize(
            who,
            Operation::Write,
            &Resource::topic(topic_data.name.0.as_str()),
        );
        let topic = broker.topics.get(topic_data.name.0.as_str());
        let mut partitions = Vec::with_capacity(topic_data.partition_data.len());
        for data in topic_data.partition_data {
            let fail = |error: ResponseError, message: Option<String>| Pending {
                response: PartitionProduceResponse::default()
                    .with_index(data.index)
                    .with_error_code(code(error))
                    .with_base_offset(-1)
                    .with_error_message(message.map(str_bytes)),
                appended: None,
            };
            if !acks_valid {
                partitions.push(fail(
                    ResponseError::InvalidRequiredAcks,
                    Some(format!("acks must be -1, 0 or 1, not {acks}")),
                ));
                continue;
            }
            if txn_refused {
                partitions.push(fail(
                    ResponseError::TransactionalIdAuthorizationFailed,
                    None,
                ));
                continue;
            }
            if !topic_allowed {
                partitions.push(fail(ResponseError::TopicAuthorizationFailed, None));
                continue;
            }
            let Some(partition) = topic.as_ref().and_then(|t| t.partition(data.index)) else {
                broker.metrics.produce_failed(topic_data.name.0.as_str());
                partitions.push(fail(ResponseError::UnknownTopicOrPartition, None));
                continue;
            };
            if is_internal(&partition.topic) {
                partitions.push(fail(
                    ResponseError::InvalidTopicException,
                    Some(format!(
                        "cannot append to internal topic {}",
                        partition.topic
                    )),
                ));
                continue;
            }
            let Some(records) = data.records.filter(|r| !r.is_empty()) else {
                partitions.push(fail(
                    ResponseError::CorruptMessage,
                    Some("the request carries no record batch".into()),
                ));
                continue;
            };
            if let Err((error, message)) = check_request_records(version, &records) {
                broker.metrics.produce_failed(&partition.topic);
                partitions.push(fail(error, Some(message)));
                continue;
            }
            let sent_bytes = records.len() as u64;
            let mut records = records.to_vec();
            let txns = &broker.txns;
            let verified = partition.append_verified(&mut records, |h| {
                txns.verify_produce(h, &partition.topic, partition.index)
            });
            match verified {
                Ok(appended) => partitions.push({
                    if !appended.duplicate {
                        let count = BatchHeader::parse(&records)
                            .map_or(0, |h| u64::try_from(h.record_count).unwrap_or(0));
                        broker.metrics.produced(&partition.topic, count, sent_bytes);
                    }
                    Pending {
                        response: PartitionProduceResponse::default()
                            .with_index(data.index)
                            .with_base_offset(appended.base_offset)
                            .with_log_start_offset(partition.log_start_offset()),
                        // A retried batch is acknowledged once its original is durable too.
                        appended: Some(partition),
                    }
                }),
                Err(e) => {
                    broker.metrics.produce_failed(&partition.topic);
                    tracing::debug!(topic = %partition.topic, partition = data.index, error = %e, "produce rejected");
                    let mut p = fail(append_error_code(&e), Some(e.to_string()));
                    if let AppendError::Invalid(e) = &e {
                        p.response.record_errors = e
                            .record_errors()
                            .into_iter()
                            .map(|(index, message)| {
                                BatchIndexAndErrorMessage::default()
                                    .with_batch_index(index)
                                    .with_batch_index_error_message(Some(str_bytes(message)))
                            })
                            .collect();
                    }
                    partitions.push(p);
                }
            }
        }
        topics.push((topic_data.name, partitions));
    }

    let flusher = broker.flusher.clone();
    async move {
        if acks == 0 {
            // Nobody waits for an answer, but the records must still become durable and visible.
            for (_, parts) in &topics {
                for partition in parts.iter().filter_map(|p| p.appended.clone()) {
                    let flusher = flusher.clone();
                    tokio::spawn(async move { flusher.commit(partition).await });
                }
            }
            return None;
        }
        let commits = topics
            .iter_mut()
            .flat_map(|(_, parts)| parts.iter_mut())
            .filter_map(|p| {
                let partition = p.appended.clone()?;
                let flusher = flusher.clone();
                Some(async move {
                    if let Err(e) = flusher.commit(partition).await {
                        p.response.error_code = code(ResponseError::KafkaStorageError);
                        p.response.error_message = Some(str_bytes(e));
                        p.response.base_offset = -1;
                    }
                })
            });
        join_all(commits).await;
        Some(
            ProduceResponse::default().with_responses(
                topics
                    .into_iter()
                    .map(|(name, parts)| {
                        TopicProduceResponse::default()
                            .with_name(name)
                            .with_partition_responses(
                                parts.into_iter().map(|p| p.response).collect(),
                            )
                    })
                    .collect(),
            ),
        )
    }
}

/// What Kafka's `ProduceRequest.validateRecords` checks of a partition's records before the log
/// sees them: from v3 they are exactly one record batch (INVALID_RECORD otherwise), and zstd
/// needs v7 (KIP-110: UNSUPPORTED_COMPRESSION_TYPE, as an older client could not read it back).
/// A batch that cannot even be parsed is left to the validator, which names what is wrong.
fn check_request_records(version: i16, records: &[u8]) -> Result<(), (ResponseError, String)> {
    let Ok(header) = BatchHeader::parse(records) else {
        return Ok(());
    };
    if header.magic != 2 {
        return Ok(());
    }
    if header.total_size() < records.len() {
        return Err((
            ResponseError::InvalidRecord,
            format!(
                "Produce requests with version {version} are only allowed to contain exactly one record batch per partition"
            ),
        ));
    }
    if header.compression() == Codec::Zstd as i16 && version < 7 {
        return Err((
            ResponseError::UnsupportedCompressionType,
            format!(
                "Produce requests with version {version} are not allowed to use ZStandard compression (it needs version 7 or later)"
            ),
        ));
    }
    Ok(())
}

/// The Kafka error for a refused append.
fn append_error_code(e: &AppendError) -> ResponseError {
    match e {
        AppendError::Sequence(e) | AppendError::Transaction(e) => *e,
        AppendError::Marker(_) => ResponseError::UnknownServerError,
        AppendError::Log(e) => ResponseError::try_from_code(log_error_code(e))
            .unwrap_or(ResponseError::UnknownServerError),
        AppendError::Invalid(e) => match e {
            // Produce v3+ carries message format v2 only (Kafka's ProduceRequest.validateRecords).
            ValidationError::Batch(LogError::UnsupportedMagic(_)) => ResponseError::InvalidRecord,
            ValidationError::Batch(e) => ResponseError::try_from_code(log_error_code(e))
                .unwrap_or(ResponseError::CorruptMessage),
            ValidationError::Codec {
                source: CodecError::TooLarge { .. },
                ..
            } => ResponseError::MessageTooLarge,
            ValidationError::Codec { .. } => ResponseError::CorruptMessage,
            ValidationError::Invalid { .. } => ResponseError::InvalidRecord,
            ValidationError::Rejected {
                timestamps: true, ..
            } => ResponseError::InvalidTimestamp,
            ValidationError::Rejected { .. } => ResponseError::InvalidRecord,
            ValidationError::Recompress { .. } => ResponseError::UnknownServerError,
        },
    }
}
