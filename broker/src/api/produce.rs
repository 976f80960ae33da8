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
use crate::broker::Broker;
use crate::log::batch::codec::CodecError;
use crate::log::batch::validator::ValidationError;
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
    req: ProduceRequest,
    _version: i16,
) -> impl Future<Output = Option<ProduceResponse>> + Send + 'static {
    let acks = req.acks;
    let acks_valid = matches!(acks, -1..=1);
    let mut topics = Vec::with_capacity(req.topic_data.len());
    for topic_data in req.topic_data {
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
            let Some(partition) = topic.as_ref().and_then(|t| t.partition(data.index)) else {
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
            let mut records = records.to_vec();
            let txns = &broker.txns;
            let verified = partition.append_verified(&mut records, |h| {
                txns.verify_produce(h, &partition.topic, partition.index)
            });
            match verified {
                Ok(appended) => partitions.push(Pending {
                    response: PartitionProduceResponse::default()
                        .with_index(data.index)
                        .with_base_offset(appended.base_offset)
                        .with_log_start_offset(partition.log_start_offset()),
                    // A retried batch is acknowledged once its original is durable too.
                    appended: Some(partition),
                }),
                Err(e) => {
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
