//! Metadata: this broker as the leader of every partition, and the topics asked for (all of them
//! for a null list), creating unknown ones when auto-creation is on and the client allows it.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};

use super::{code, str_bytes, topic_name};
use crate::authorizer::{Operation, Requester, Resource};
use crate::broker::{Advertised, Broker};
use crate::topic::{name, Topic, TopicConfigs};

pub async fn handle(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    advertised: &Advertised,
    req: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    let node = BrokerId(broker.node_id());
    let mut resp = MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(node)
            .with_host(str_bytes(advertised.host.clone()))
            .with_port(advertised.port)])
        .with_cluster_id(Some(str_bytes(broker.topics.cluster_id())))
        .with_controller_id(node);

    // v0 asks for all topics with an empty list; later versions with a null one.
    let requested = match req.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(t),
    };
    let Some(requested) = requested else {
        resp.topics = broker
            .topics
            .all()
            .iter()
            // Topics the principal may not describe are not listed at all.
            .filter(|t| {
                broker.authorizer.authorize(
                    who,
                    Operation::Describe,
                    &Resource::topic(t.name.clone()),
                )
            })
            .map(|t| describe(t, node, version))
            .collect();
        return resp;
    };

    // Before v4 there is no flag and clients expect auto-creation.
    let allow_create =
        broker.config.auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
    for wanted in requested {
        let entry = match wanted.name {
            Some(name) => {
                lookup_or_create(broker, who, name.0.as_str(), allow_create, node, version).await
            }
            None => match broker.topics.get_by_id(wanted.topic_id) {
                Some(t)
                    if broker.authorizer.authorize(
                        who,
                        Operation::Describe,
                        &Resource::topic(t.name.clone()),
                    ) =>
                {
                    describe(&t, node, version)
                }
                // One the principal may not describe looks like one that does not exist.
                _ => MetadataResponseTopic::default()
                    .with_error_code(code(ResponseError::UnknownTopicId))
                    .with_topic_id(wanted.topic_id),
            },
        };
        resp.topics.push(entry);
    }
    resp
}

async fn lookup_or_create(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    wanted: &str,
    allow_create: bool,
    node: BrokerId,
    version: i16,
) -> MetadataResponseTopic {
    let missing = |error: ResponseError| {
        MetadataResponseTopic::default()
            .with_error_code(code(error))
            .with_name(Some(topic_name(wanted)))
    };
    if name::validate(wanted).is_err() {
        return missing(ResponseError::InvalidTopicException);
    }
    let authorizer = &broker.authorizer;
    if !authorizer.authorize(who, Operation::Describe, &Resource::topic(wanted)) {
        return missing(ResponseError::TopicAuthorizationFailed);
    }
    if let Some(t) = broker.topics.get(wanted) {
        return describe(&t, node, version);
    }
    if name::is_reserved(wanted) {
        // Never auto-created: only Kafka's own coordinators may create these.
        return missing(ResponseError::InvalidTopicException);
    }
    if !allow_create {
        return missing(ResponseError::UnknownTopicOrPartition);
    }
    // Auto-creation needs CREATE on the cluster or on the topic.
    if !authorizer.authorize(who, Operation::Create, &Resource::cluster())
        && !authorizer.authorize(who, Operation::Create, &Resource::topic(wanted))
    {
        return missing(ResponseError::TopicAuthorizationFailed);
    }
    match broker
        .topics
        .create(wanted, -1, -1, TopicConfigs::default())
        .await
    {
        Ok(t) => describe(&t, node, version),
        Err(e) => match broker.topics.get(wanted) {
            // Created by a concurrent request in the meantime.
            Some(t) => describe(&t, node, version),
            None => {
                tracing::warn!(topic = wanted, error = %e, "auto-creation failed");
                missing(
                    ResponseError::try_from_code(e.code())
                        .unwrap_or(ResponseError::UnknownServerError),
                )
            }
        },
    }
}

fn describe(topic: &Topic, node: BrokerId, version: i16) -> MetadataResponseTopic {
    let partitions = (0..topic.partition_count())
        .map(|index| {
            MetadataResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(node)
                .with_leader_epoch(0)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    let mut t = MetadataResponseTopic::default()
        .with_name(Some(topic_name(topic.name.clone())))
        .with_is_internal(topic.is_internal())
        .with_partitions(partitions);
    if version >= 10 {
        t.topic_id = topic.id;
    }
    t
}
