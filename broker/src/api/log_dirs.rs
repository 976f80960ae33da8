//! DescribeLogDirs: the broker's one log directory (`--data-dir`) with the size on disk of each
//! partition, as kafka-log-dirs.sh and consoles (topic sizes) ask for it. Every partition is
//! current (no future replica moving between directories), so `offset_lag` is 0; the volume's
//! total and usable bytes (v4) are reported as unknown (-1).

use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};

use super::str_bytes;
use crate::authorizer::{Operation, Requester, Resource};
use crate::broker::Broker;

pub fn describe(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    // DESCRIBE on the cluster, as Kafka checks it.
    if !broker
        .authorizer
        .authorize(who, Operation::Describe, &Resource::cluster())
    {
        return DescribeLogDirsResponse::default().with_error_code(
            kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code(),
        );
    }
    let size = |p: &crate::topic::Partition| i64::try_from(p.size_bytes()).unwrap_or(i64::MAX);
    let topics: Vec<DescribeLogDirsTopic> = match req.topics {
        // All partitions.
        None => broker
            .topics
            .all()
            .iter()
            .map(|t| {
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(str_bytes(t.name.clone())))
                    .with_partitions(
                        t.partitions()
                            .iter()
                            .map(|p| {
                                DescribeLogDirsPartition::default()
                                    .with_partition_index(p.index)
                                    .with_partition_size(size(p))
                            })
                            .collect(),
                    )
            })
            .collect(),
        // Only the partitions asked for that exist here.
        Some(wanted) => wanted
            .into_iter()
            .filter_map(|w| {
                let topic = broker.topics.get(w.topic.0.as_str())?;
                let partitions: Vec<DescribeLogDirsPartition> = w
                    .partitions
                    .iter()
                    .filter_map(|&i| topic.partition(i))
                    .map(|p| {
                        DescribeLogDirsPartition::default()
                            .with_partition_index(p.index)
                            .with_partition_size(size(&p))
                    })
                    .collect();
                Some(
                    DescribeLogDirsTopic::default()
                        .with_name(w.topic)
                        .with_partitions(partitions),
                )
            })
            .collect(),
    };
    let dir = std::path::absolute(&broker.config.data_dir)
        .unwrap_or_else(|_| broker.config.data_dir.clone());
    DescribeLogDirsResponse::default().with_results(vec![DescribeLogDirsResult::default()
        .with_log_dir(str_bytes(dir.display().to_string()))
        .with_topics(topics)
        .with_total_bytes(-1)
        .with_usable_bytes(-1)])
}
