//! DeleteRecords: moves a partition's log start offset forward (offset -1 means the high
//! watermark); whole segments below it are deleted. Internal topics are refused with
//! INVALID_TOPIC_EXCEPTION, as Kafka's ReplicaManager does: deleting committed offsets' records
//! would lose every group's position at the next restart.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::{code, log_error_code};
use crate::authorizer::{Operation, Requester, Resource};
use crate::broker::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|wanted| {
            // DELETE on the topic.
            let allowed = broker.authorizer.authorize(
                who,
                Operation::Delete,
                &Resource::topic(wanted.name.0.as_str()),
            );
            let topic = broker.topics.get(wanted.name.0.as_str());
            let partitions = wanted
                .partitions
                .into_iter()
                .map(|p| {
                    let mut out = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
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
                    if topic.as_ref().is_some_and(|t| t.is_internal()) {
                        out.error_code = code(ResponseError::InvalidTopicException);
                        return out;
                    }
                    let hw = partition.high_watermark();
                    let offset = if p.offset == -1 { hw } else { p.offset };
                    if offset < 0 || offset > hw {
                        out.error_code = code(ResponseError::OffsetOutOfRange);
                        return out;
                    }
                    match partition.delete_records_before(offset) {
                        Ok(low) => out.low_watermark = low,
                        Err(e) => out.error_code = log_error_code(&e),
                    }
                    out
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(wanted.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
