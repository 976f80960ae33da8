//! OffsetCommit, OffsetFetch (plain and, from v8, grouped) and OffsetDelete.
//!
//! A commit takes effect while the request is dispatched, in the order the connection sent it;
//! only the wait for durability runs concurrently with later requests. Consumers commit
//! asynchronously and pipeline their commits, and Kafka applies them in order: after commits
//! of 49 then 50 the stored offset must be 50, or a restarted consumer reads again what it had
//! finished.

use std::future::Future;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;

use super::{code, str_bytes, topic_name};
use crate::authorizer::{Operation, Requester, Resource};
use crate::broker::Broker;
use crate::group::offsets::Committed;

/// Longest commit metadata accepted (Kafka's `offset.metadata.max.bytes`).
const MAX_METADATA: usize = 4096;

pub fn commit(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: OffsetCommitRequest,
) -> impl Future<Output = Option<OffsetCommitResponse>> + Send + 'static {
    let group = req.group_id.0.to_string();
    // READ on the group, then READ on each topic.
    let group_allowed = broker
        .authorizer
        .authorize(who, Operation::Read, &Resource::group(&group));
    let membership = if !group_allowed {
        Err(ResponseError::GroupAuthorizationFailed)
    } else {
        broker.groups.validate_commit(
            &group,
            req.generation_id_or_member_epoch,
            req.member_id.as_str(),
            req.group_instance_id.as_ref().map(|s| s.as_str()),
        )
    };
    let now = crate::now_ms();
    let mut to_store = Vec::new();
    // (topic, [(partition, error)]), errors filled in below.
    let mut results: Vec<(TopicName, Vec<(i32, i16)>)> = Vec::new();
    for t in req.topics {
        let topic = broker.topics.get(t.name.0.as_str());
        let topic_allowed =
            broker
                .authorizer
                .authorize(who, Operation::Read, &Resource::topic(t.name.0.as_str()));
        let mut parts = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let error = if let Err(e) = membership {
                code(e)
            } else if !topic_allowed {
                code(ResponseError::TopicAuthorizationFailed)
            } else if topic
                .as_ref()
                .and_then(|t| t.partition(p.partition_index))
                .is_none()
            {
                code(ResponseError::UnknownTopicOrPartition)
            } else if p
                .committed_metadata
                .as_ref()
                .is_some_and(|m| m.len() > MAX_METADATA)
            {
                code(ResponseError::OffsetMetadataTooLarge)
            } else {
                to_store.push((
                    (t.name.0.to_string(), p.partition_index),
                    Committed {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p
                            .committed_metadata
                            .map(|m| m.to_string())
                            .unwrap_or_default(),
                        commit_timestamp: now,
                    },
                ));
                0
            };
            parts.push((p.partition_index, error));
        }
        results.push((t.name, parts));
    }
    // Applied now, in request order; only durability is awaited.
    let stored = broker.offsets.commit(&group, to_store);
    async move {
        let stored = stored.await;
        if let Err(e) = &stored {
            tracing::error!(group = %group, error = %e, "offset commit failed");
        }
        let topics = results
            .into_iter()
            .map(|(name, parts)| {
                OffsetCommitResponseTopic::default()
                    .with_name(name)
                    .with_partitions(
                        parts
                            .into_iter()
                            .map(|(index, error)| {
                                let error = if error == 0 && stored.is_err() {
                                    code(ResponseError::CoordinatorNotAvailable)
                                } else {
                                    error
                                };
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(index)
                                    .with_error_code(error)
                            })
                            .collect(),
                    )
            })
            .collect();
        Some(OffsetCommitResponse::default().with_topics(topics))
    }
}

/// Topics with their partitions, as OffsetFetch asks for them.
type Wanted = Option<Vec<(String, Vec<i32>)>>;
/// Topics with each partition's committed offset, if any.
type Found = Vec<(String, Vec<(i32, Option<Committed>)>)>;

/// Committed offsets of `group`: for the given topics and partitions, or all of them.
fn lookup(broker: &Broker, group: &str, topics: Wanted) -> Found {
    match topics {
        Some(topics) => topics
            .into_iter()
            .map(|(topic, parts)| {
                let found = parts
                    .into_iter()
                    .map(|p| (p, broker.offsets.get(group, &topic, p)))
                    .collect();
                (topic, found)
            })
            .collect(),
        None => {
            let mut out: Found = Vec::new();
            for ((topic, p), c) in broker.offsets.all_of(group) {
                match out.last_mut() {
                    Some((t, parts)) if *t == topic => parts.push((p, Some(c))),
                    _ => out.push((topic, vec![(p, Some(c))])),
                }
            }
            out
        }
    }
}

/// Whether `require_stable` (KIP-447, v7+) and a transaction still holds offsets for this
/// partition that it has not committed yet: the client is told UNSTABLE_OFFSET_COMMIT and asks
/// again, rather than resuming from an offset the transaction is about to replace.
fn unstable(broker: &Broker, require_stable: bool, group: &str, topic: &str, p: i32) -> bool {
    require_stable && broker.txns.has_pending_offsets(group, topic, p)
}

/// One partition's answer to OffsetFetch: the committed offset (if any and if it may be told)
/// and the partition's error code.
struct Answer {
    partition: i32,
    committed: Option<Committed>,
    error: i16,
}

pub fn fetch(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    // As Kafka's KafkaApis: DESCRIBE on the group (READ implies it); a topic asked for by name
    // that the principal may not DESCRIBE gets TOPIC_AUTHORIZATION_FAILED on each partition;
    // when all topics are asked for, such topics are left out.
    let group_refused = |group: &str| {
        !broker
            .authorizer
            .authorize(who, Operation::Describe, &Resource::group(group))
    };
    let require_stable = version >= 7 && req.require_stable;
    let answers = |group: &str, topics: Wanted| -> Vec<(String, Vec<Answer>)> {
        let all = topics.is_none();
        lookup(broker, group, topics)
            .into_iter()
            .filter_map(|(topic, parts)| {
                let described = broker.authorizer.authorize(
                    who,
                    Operation::Describe,
                    &Resource::topic(topic.as_str()),
                );
                if !described && all {
                    return None;
                }
                let parts = parts
                    .into_iter()
                    .map(|(partition, committed)| {
                        let error = if !described {
                            Some(ResponseError::TopicAuthorizationFailed)
                        } else if unstable(broker, require_stable, group, &topic, partition) {
                            Some(ResponseError::UnstableOffsetCommit)
                        } else {
                            None
                        };
                        Answer {
                            partition,
                            committed: committed.filter(|_| error.is_none()),
                            error: error.map(code).unwrap_or(0),
                        }
                    })
                    .collect();
                Some((topic, parts))
            })
            .collect()
    };
    if version >= 8 {
        let groups = req
            .groups
            .into_iter()
            .map(|g| {
                let topics = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes))
                        .collect()
                });
                let group = g.group_id.0.to_string();
                if group_refused(&group) {
                    return OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id)
                        .with_error_code(code(ResponseError::GroupAuthorizationFailed));
                }
                let topics = answers(&group, topics)
                    .into_iter()
                    .map(|(topic, parts)| {
                        OffsetFetchResponseTopics::default()
                            .with_name(topic_name(topic))
                            .with_partitions(
                                parts
                                    .into_iter()
                                    .map(|a| {
                                        let c = a.committed.unwrap_or(Committed {
                                            offset: -1,
                                            leader_epoch: -1,
                                            metadata: String::new(),
                                            commit_timestamp: -1,
                                        });
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(a.partition)
                                            .with_committed_offset(c.offset)
                                            .with_committed_leader_epoch(c.leader_epoch)
                                            .with_metadata(Some(str_bytes(c.metadata)))
                                            .with_error_code(a.error)
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id)
                    .with_topics(topics)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let topics = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let group = req.group_id.0.to_string();
    if group_refused(&group) {
        return OffsetFetchResponse::default()
            .with_error_code(code(ResponseError::GroupAuthorizationFailed));
    }
    OffsetFetchResponse::default().with_topics(
        answers(&group, topics)
            .into_iter()
            .map(|(topic, parts)| {
                OffsetFetchResponseTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(
                        parts
                            .into_iter()
                            .map(|a| {
                                let mut out = OffsetFetchResponsePartition::default()
                                    .with_partition_index(a.partition)
                                    .with_committed_offset(-1)
                                    .with_metadata(Some(str_bytes("")))
                                    .with_error_code(a.error);
                                if let Some(c) = a.committed {
                                    out.committed_offset = c.offset;
                                    if version >= 5 {
                                        out.committed_leader_epoch = c.leader_epoch;
                                    }
                                    out.metadata = Some(str_bytes(c.metadata));
                                }
                                out
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

pub async fn delete(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let group = req.group_id.0.to_string();
    if !broker
        .authorizer
        .authorize(who, Operation::Delete, &Resource::group(&group))
    {
        return OffsetDeleteResponse::default()
            .with_error_code(code(ResponseError::GroupAuthorizationFailed));
    }
    let known =
        broker.groups.describe(&group).is_some() || broker.offsets.groups().contains(&group);
    if !known {
        return OffsetDeleteResponse::default()
            .with_error_code(code(ResponseError::GroupIdNotFound));
    }
    let mut delete = Vec::new();
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let subscribed = broker.groups.is_subscribed(&group, t.name.0.as_str());
        let topic_allowed =
            broker
                .authorizer
                .authorize(who, Operation::Read, &Resource::topic(t.name.0.as_str()));
        let parts = t
            .partitions
            .into_iter()
            .map(|p| {
                let error = if !topic_allowed {
                    code(ResponseError::TopicAuthorizationFailed)
                } else if subscribed {
                    code(ResponseError::GroupSubscribedToTopic)
                } else {
                    delete.push((t.name.0.to_string(), p.partition_index));
                    0
                };
                OffsetDeleteResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(error)
            })
            .collect();
        topics.push(
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(parts),
        );
    }
    if let Err(e) = broker.offsets.delete(&group, Some(delete)).await {
        tracing::error!(group = %group, error = %e, "offset delete failed");
        return OffsetDeleteResponse::default()
            .with_error_code(code(ResponseError::CoordinatorNotAvailable));
    }
    OffsetDeleteResponse::default().with_topics(topics)
}
