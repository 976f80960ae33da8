//! The transaction APIs (KIP-98, KIP-664): AddPartitionsToTxn, AddOffsetsToTxn,
//! TxnOffsetCommit, EndTxn, DescribeTransactions and ListTransactions. The state machine and
//! its durability are the coordinator's ([`crate::txn`]); this module maps requests onto it and
//! its errors onto each response's error fields.

use std::future::Future;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::list_transactions_response::TransactionState as ListedState;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::*;

use super::{code, str_bytes, topic_name};
use crate::authorizer::{Operation, Requester, Resource};
use crate::broker::Broker;
use crate::group::offsets::Committed;
use crate::txn::{fenced, TxnMeta, TxnState};

/// Requests from this version on may be answered PRODUCER_FENCED (older ones get
/// INVALID_PRODUCER_EPOCH), as in Kafka.
const FENCED_SINCE: i16 = 2;

fn error_for(e: ResponseError, version: i16) -> i16 {
    match e {
        ResponseError::ProducerFenced => code(fenced(version, FENCED_SINCE)),
        e => code(e),
    }
}

/// WRITE on the transactional id, which every transactional request needs.
fn txn_write(
    broker: &Broker,
    who: Requester<'_>,
    id: &TransactionalId,
) -> Result<(), ResponseError> {
    if broker.authorizer.authorize(
        who,
        Operation::Write,
        &Resource::transactional_id(id.0.as_str()),
    ) {
        Ok(())
    } else {
        Err(ResponseError::TransactionalIdAuthorizationFailed)
    }
}

fn txn_id(id: &TransactionalId) -> Result<String, ResponseError> {
    let id = id.0.to_string();
    if id.is_empty() {
        return Err(ResponseError::InvalidRequest);
    }
    Ok(id)
}

/// AddPartitionsToTxn v0–3.
pub fn add_partitions(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: AddPartitionsToTxnRequest,
    version: i16,
) -> impl Future<Output = Option<AddPartitionsToTxnResponse>> + Send + 'static {
    let allowed = txn_write(broker, who, &req.v3_and_below_transactional_id);
    // Topics the principal may not WRITE fail like unknown ones, with their own error.
    let refused_topics: std::collections::HashSet<String> = req
        .v3_and_below_topics
        .iter()
        .map(|t| t.name.0.to_string())
        .filter(|t| {
            !broker
                .authorizer
                .authorize(who, Operation::Write, &Resource::topic(t.as_str()))
        })
        .collect();
    let broker = broker.clone();
    async move {
        let wanted: Vec<(TopicName, Vec<i32>)> = req
            .v3_and_below_topics
            .into_iter()
            .map(|t| (t.name, t.partitions))
            .collect();
        let unknown = |topic: &TopicName, p: i32| {
            broker
                .topics
                .get(topic.0.as_str())
                .and_then(|t| t.partition(p))
                .is_none()
                || crate::topic::name::is_internal(topic.0.as_str())
                || refused_topics.contains(topic.0.as_str())
        };
        let any_unknown = wanted
            .iter()
            .any(|(t, parts)| parts.iter().any(|p| unknown(t, *p)));
        // One error for every partition, or per partition when some do not exist (the others
        // are then not attempted), as Kafka answers.
        let outcome: Result<(), ResponseError> = if let Err(e) = allowed {
            Err(e)
        } else if any_unknown {
            Err(ResponseError::OperationNotAttempted)
        } else {
            match txn_id(&req.v3_and_below_transactional_id) {
                Err(e) => Err(e),
                Ok(id) => {
                    let partitions = wanted
                        .iter()
                        .flat_map(|(t, parts)| parts.iter().map(|p| (t.0.to_string(), *p)))
                        .collect();
                    broker
                        .txns
                        .add_partitions(
                            &id,
                            req.v3_and_below_producer_id.0,
                            req.v3_and_below_producer_epoch,
                            partitions,
                        )
                        .await
                }
            }
        };
        let results = wanted
            .into_iter()
            .map(|(name, parts)| {
                let results_by_partition = parts
                    .iter()
                    .map(|p| {
                        let error = match &outcome {
                            Ok(()) => 0,
                            Err(ResponseError::OperationNotAttempted)
                                if refused_topics.contains(name.0.as_str()) =>
                            {
                                code(ResponseError::TopicAuthorizationFailed)
                            }
                            Err(ResponseError::OperationNotAttempted) if unknown(&name, *p) => {
                                code(ResponseError::UnknownTopicOrPartition)
                            }
                            Err(e) => error_for(*e, version),
                        };
                        AddPartitionsToTxnPartitionResult::default()
                            .with_partition_index(*p)
                            .with_partition_error_code(error)
                    })
                    .collect();
                AddPartitionsToTxnTopicResult::default()
                    .with_name(name)
                    .with_results_by_partition(results_by_partition)
            })
            .collect();
        Some(AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results))
    }
}

/// AddOffsetsToTxn v0–3.
pub fn add_offsets(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: AddOffsetsToTxnRequest,
    version: i16,
) -> impl Future<Output = Option<AddOffsetsToTxnResponse>> + Send + 'static {
    // WRITE on the transactional id, READ on the group.
    let allowed = txn_write(broker, who, &req.transactional_id).and_then(|()| {
        if broker.authorizer.authorize(
            who,
            Operation::Read,
            &Resource::group(req.group_id.0.as_str()),
        ) {
            Ok(())
        } else {
            Err(ResponseError::GroupAuthorizationFailed)
        }
    });
    let broker = broker.clone();
    async move {
        let result = match allowed.and_then(|()| txn_id(&req.transactional_id)) {
            Err(e) => Err(e),
            Ok(_) if req.group_id.0.is_empty() => Err(ResponseError::InvalidGroupId),
            Ok(id) => {
                broker
                    .txns
                    .add_offsets(
                        &id,
                        req.producer_id.0,
                        req.producer_epoch,
                        req.group_id.0.as_str(),
                    )
                    .await
            }
        };
        Some(
            AddOffsetsToTxnResponse::default()
                .with_error_code(result.err().map_or(0, |e| error_for(e, version))),
        )
    }
}

/// TxnOffsetCommit v0–3.
pub fn txn_offset_commit(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: TxnOffsetCommitRequest,
    version: i16,
) -> impl Future<Output = Option<TxnOffsetCommitResponse>> + Send + 'static {
    // WRITE on the transactional id, READ on the group and on each topic.
    let allowed = txn_write(broker, who, &req.transactional_id).and_then(|()| {
        if broker.authorizer.authorize(
            who,
            Operation::Read,
            &Resource::group(req.group_id.0.as_str()),
        ) {
            Ok(())
        } else {
            Err(ResponseError::GroupAuthorizationFailed)
        }
    });
    let refused_topics: std::collections::HashSet<String> = req
        .topics
        .iter()
        .map(|t| t.name.0.to_string())
        .filter(|t| {
            !broker
                .authorizer
                .authorize(who, Operation::Read, &Resource::topic(t.as_str()))
        })
        .collect();
    let broker = broker.clone();
    async move {
        let group = req.group_id.0.to_string();
        let now = crate::now_ms();
        let mut unknown = Vec::new();
        let mut offsets = Vec::new();
        for t in &req.topics {
            let topic = broker.topics.get(t.name.0.as_str());
            for p in &t.partitions {
                if refused_topics.contains(t.name.0.as_str()) {
                    continue;
                }
                if topic
                    .as_ref()
                    .and_then(|t| t.partition(p.partition_index))
                    .is_none()
                {
                    unknown.push((t.name.0.to_string(), p.partition_index));
                    continue;
                }
                offsets.push((
                    (t.name.0.to_string(), p.partition_index),
                    Committed {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p
                            .committed_metadata
                            .as_ref()
                            .map(|m| m.to_string())
                            .unwrap_or_default(),
                        commit_timestamp: now,
                    },
                ));
            }
        }
        // v3+: a member of a consumer group commits as that member (KIP-447).
        let membership = if version >= 3 && req.generation_id >= 0 {
            broker.groups.validate_commit(
                &group,
                req.generation_id,
                req.member_id.as_str(),
                req.group_instance_id.as_ref().map(|s| s.as_str()),
            )
        } else {
            Ok(())
        };
        let result = match (
            allowed.and_then(|()| txn_id(&req.transactional_id)),
            membership,
        ) {
            (Err(e), _) | (_, Err(e)) => Err(e),
            (Ok(id), Ok(())) => {
                broker
                    .txns
                    .txn_offset_commit(&id, req.producer_id.0, req.producer_epoch, &group, offsets)
                    .await
            }
        };
        let topics = req
            .topics
            .into_iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let error = if refused_topics.contains(t.name.0.as_str()) {
                            code(ResponseError::TopicAuthorizationFailed)
                        } else if unknown.contains(&(t.name.0.to_string(), p.partition_index)) {
                            code(ResponseError::UnknownTopicOrPartition)
                        } else {
                            result.err().map_or(0, |e| error_for(e, version))
                        };
                        TxnOffsetCommitResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(error)
                    })
                    .collect();
                TxnOffsetCommitResponseTopic::default()
                    .with_name(t.name)
                    .with_partitions(partitions)
            })
            .collect();
        Some(TxnOffsetCommitResponse::default().with_topics(topics))
    }
}

/// EndTxn v0–3.
pub fn end_txn(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: EndTxnRequest,
    version: i16,
) -> impl Future<Output = Option<EndTxnResponse>> + Send + 'static {
    let allowed = txn_write(broker, who, &req.transactional_id);
    let broker = broker.clone();
    async move {
        let result = match allowed.and_then(|()| txn_id(&req.transactional_id)) {
            Err(e) => Err(e),
            Ok(id) => {
                broker
                    .txns
                    .end_txn(
                        &broker,
                        &id,
                        req.producer_id.0,
                        req.producer_epoch,
                        req.committed,
                    )
                    .await
            }
        };
        if let Err(e) = result {
            tracing::debug!(transactional_id = %req.transactional_id.0, error = ?e, "EndTxn refused");
        }
        Some(
            EndTxnResponse::default()
                .with_error_code(result.err().map_or(0, |e| error_for(e, version))),
        )
    }
}

fn topics_of(meta: &TxnMeta) -> Vec<TopicData> {
    let mut out: Vec<TopicData> = Vec::new();
    for (topic, p) in &meta.partitions {
        match out.last_mut() {
            Some(t) if t.topic.0.as_str() == topic => t.partitions.push(*p),
            _ => out.push(
                TopicData::default()
                    .with_topic(topic_name(topic.clone()))
                    .with_partitions(vec![*p]),
            ),
        }
    }
    out
}

/// DescribeTransactions v0 (KIP-664).
pub fn describe(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let states = req
        .transactional_ids
        .into_iter()
        .map(|id| match broker.txns.describe(id.0.as_str()) {
            _ if !broker.authorizer.authorize(
                who,
                Operation::Describe,
                &Resource::transactional_id(id.0.as_str()),
            ) =>
            {
                TransactionState::default()
                    .with_transactional_id(id)
                    .with_error_code(code(ResponseError::TransactionalIdAuthorizationFailed))
                    .with_transaction_state(str_bytes(""))
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1)
                    .with_transaction_start_time_ms(-1)
            }
            None => TransactionState::default()
                .with_transactional_id(id)
                .with_error_code(code(ResponseError::TransactionalIdNotFound))
                .with_transaction_state(str_bytes(""))
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
                .with_transaction_start_time_ms(-1),
            Some(meta) => TransactionState::default()
                .with_topics(topics_of(&meta))
                .with_transactional_id(id)
                .with_transaction_state(str_bytes(meta.state.name()))
                .with_transaction_timeout_ms(meta.timeout_ms)
                .with_transaction_start_time_ms(meta.start_ms)
                .with_producer_id(ProducerId(meta.producer_id))
                .with_producer_epoch(meta.producer_epoch),
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

/// ListTransactions v0–1 (KIP-664; v1 adds the duration filter, KIP-994).
pub fn list(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let unknown_state_filters: Vec<_> = req
        .state_filters
        .iter()
        .filter(|f| !TxnState::ALL.iter().any(|s| s.name() == f.as_str()))
        .cloned()
        .collect();
    let now = crate::now_ms();
    let states = broker
        .txns
        .list()
        .into_iter()
        // Only transactional ids the principal may DESCRIBE are listed.
        .filter(|(id, _)| {
            broker.authorizer.authorize(
                who,
                Operation::Describe,
                &Resource::transactional_id(id.as_str()),
            )
        })
        .filter(|(_, m)| {
            req.state_filters.is_empty()
                || req
                    .state_filters
                    .iter()
                    .any(|f| f.as_str() == m.state.name())
        })
        .filter(|(_, m)| {
            req.producer_id_filters.is_empty()
                || req.producer_id_filters.contains(&ProducerId(m.producer_id))
        })
        .filter(|(_, m)| {
            // Transactions running longer than the filter (KIP-994): ongoing ones only.
            req.duration_filter < 0
                || (m.state == TxnState::Ongoing
                    && now.saturating_sub(m.start_ms) > req.duration_filter)
        })
        .map(|(id, m)| {
            ListedState::default()
                .with_transactional_id(TransactionalId(str_bytes(id)))
                .with_producer_id(ProducerId(m.producer_id))
                .with_transaction_state(str_bytes(m.state.name()))
        })
        .collect();
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown_state_filters)
        .with_transaction_states(states)
}
