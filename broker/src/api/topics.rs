//! CreateTopics, DeleteTopics and CreatePartitions.
//!
//! Kafka's internal topics cannot be deleted (the registry refuses with INVALID_TOPIC_EXCEPTION
//! and says why; see `topic::name`), and the reserved names of internal topics this broker does
//! not create (`__transaction_state`, `__cluster_metadata`) cannot be created by clients.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, TopicName,
};

use super::{code, str_bytes};
use crate::authorizer::{Operation, Requester, Resource};
use crate::broker::Broker;
use crate::topic::config::DEFS;
use crate::topic::{name, TopicConfigs, TopicError};

/// Kafka's ConfigSource values.
pub(crate) const DYNAMIC_TOPIC_CONFIG: i8 = 1;
pub(crate) const DEFAULT_CONFIG: i8 = 5;

/// A topic result's error when the principal may not do `op` on it.
fn refused(broker: &Broker, who: Requester<'_>, op: Operation, topic: &str) -> bool {
    !broker
        .authorizer
        .authorize(who, op, &Resource::topic(topic))
}

pub async fn create(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    for wanted in req.topics {
        let name = wanted.name.0.to_string();
        let mut result = CreatableTopicResult::default().with_name(wanted.name.clone());
        // CREATE on the cluster or on the topic.
        if !broker
            .authorizer
            .authorize(who, Operation::Create, &Resource::cluster())
            && refused(broker, who, Operation::Create, &name)
        {
            result.error_code = code(ResponseError::TopicAuthorizationFailed);
            if version >= 5 {
                result.num_partitions = -1;
                result.replication_factor = -1;
            }
            results.push(result);
            continue;
        }
        let outcome = async {
            if name::is_reserved(&name) {
                return Err(TopicError::Reserved(name.clone()));
            }
            let configs = requested_configs(&wanted.configs)?;
            if !wanted.assignments.is_empty() {
                let single = wanted
                    .assignments
                    .iter()
                    .all(|a| a.broker_ids.iter().all(|b| b.0 == broker.node_id()));
                if !single {
                    return Err(TopicError::InvalidReplicationFactor(format!(
                        "replica assignments may only name broker {}",
                        broker.node_id()
                    )));
                }
            }
            let (partitions, replication) = if wanted.assignments.is_empty() {
                (wanted.num_partitions, wanted.replication_factor)
            } else {
                (
                    i32::try_from(wanted.assignments.len()).unwrap_or(i32::MAX),
                    1,
                )
            };
            if req.validate_only {
                let count = broker
                    .topics
                    .validate_new(&name, partitions, replication, &configs)?;
                Ok((count, configs, None))
            } else {
                let topic = broker
                    .topics
                    .create(&name, partitions, replication, configs)
                    .await?;
                Ok((topic.partition_count(), topic.configs(), Some(topic.id)))
            }
        }
        .await;
        match outcome {
            Ok((partitions, configs, id)) => {
                if version >= 5 {
                    result.num_partitions = partitions;
                    result.replication_factor = 1;
                    // As Kafka: the configs only for a principal that may DESCRIBE_CONFIGS the
                    // topic; anyone else learns why they are missing.
                    if refused(broker, who, Operation::DescribeConfigs, &name) {
                        result.topic_config_error_code =
                            code(ResponseError::TopicAuthorizationFailed);
                    } else {
                        result.configs = Some(describe_for_create(broker, &configs));
                    }
                }
                if let Some(id) = id {
                    result.topic_id = id;
                }
            }
            Err(e) => {
                result.error_code = e.code();
                result.error_message = Some(str_bytes(e.to_string()));
                if version >= 5 {
                    result.num_partitions = -1;
                    result.replication_factor = -1;
                }
            }
        }
        results.push(result);
    }
    CreateTopicsResponse::default().with_topics(results)
}

fn requested_configs(
    configs: &[kafka_protocol::messages::create_topics_request::CreatableTopicConfig],
) -> Result<TopicConfigs, TopicError> {
    let mut out = TopicConfigs::default();
    for c in configs {
        let name = c.name.to_string();
        let Some(value) = c.value.as_ref() else {
            return Err(TopicError::InvalidConfig(format!(
                "null value for configuration {name}"
            )));
        };
        crate::topic::config::validate(&name, value.as_str()).map_err(TopicError::InvalidConfig)?;
        if out.0.insert(name.clone(), value.to_string()).is_some() {
            return Err(TopicError::InvalidConfig(format!(
                "configuration {name} given more than once"
            )));
        }
    }
    Ok(out)
}

fn describe_for_create(broker: &Broker, configs: &TopicConfigs) -> Vec<CreatableTopicConfigs> {
    DEFS.iter()
        .filter_map(|def| {
            let value = configs.effective(def.name, &broker.config)?;
            Some(
                CreatableTopicConfigs::default()
                    .with_name(str_bytes(def.name))
                    .with_value(Some(str_bytes(value)))
                    .with_config_source(if configs.0.contains_key(def.name) {
                        DYNAMIC_TOPIC_CONFIG
                    } else {
                        DEFAULT_CONFIG
                    }),
            )
        })
        .collect()
}

pub async fn delete(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    // Up to v5 topics come by name in `topic_names`; from v6 in `topics`, by name or by id.
    let wanted: Vec<(Option<String>, uuid::Uuid)> = if version >= 6 {
        req.topics
            .into_iter()
            .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        req.topic_names
            .into_iter()
            .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        let topic = match &name {
            Some(name) => broker.topics.get(name),
            None => broker.topics.get_by_id(id),
        };
        let mut result = DeletableTopicResult::default()
            .with_name(name.clone().map(|n| TopicName(str_bytes(n))))
            .with_topic_id(id);
        // DELETE on the topic; one the principal may not even DESCRIBE looks absent.
        let topic_name = name
            .clone()
            .or_else(|| topic.as_ref().map(|t| t.name.clone()));
        if let Some(n) = topic_name.as_deref() {
            if refused(broker, who, Operation::Delete, n) {
                result.error_code =
                    if refused(broker, who, Operation::Describe, n) && name.is_none() {
                        code(ResponseError::UnknownTopicId)
                    } else {
                        code(ResponseError::TopicAuthorizationFailed)
                    };
                responses.push(result);
                continue;
            }
        }
        match topic {
            None => {
                result.error_code = if name.is_some() {
                    code(ResponseError::UnknownTopicOrPartition)
                } else {
                    code(ResponseError::UnknownTopicId)
                };
            }
            Some(topic) => {
                result.name = Some(TopicName(str_bytes(topic.name.clone())));
                if version >= 6 {
                    result.topic_id = topic.id;
                }
                if let Err(e) = broker.topics.delete(&topic.name).await {
                    result.error_code = e.code();
                    if version >= 5 {
                        result.error_message = Some(str_bytes(e.to_string()));
                    }
                }
            }
        }
        responses.push(result);
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

pub async fn create_partitions(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    for wanted in req.topics {
        let mut result = CreatePartitionsTopicResult::default().with_name(wanted.name.clone());
        let single = wanted
            .assignments
            .iter()
            .flatten()
            .all(|a| a.broker_ids.iter().all(|b| b.0 == broker.node_id()));
        let outcome = if refused(broker, who, Operation::Alter, wanted.name.0.as_str()) {
            result.error_code = code(ResponseError::TopicAuthorizationFailed);
            results.push(result);
            continue;
        } else if single {
            broker
                .topics
                .create_partitions(wanted.name.0.as_str(), wanted.count, req.validate_only)
                .await
        } else {
            Err(TopicError::InvalidReplicationFactor(format!(
                "replica assignments may only name broker {}",
                broker.node_id()
            )))
        };
        if let Err(e) = outcome {
            result.error_code = e.code();
            result.error_message = Some(str_bytes(e.to_string()));
        }
        results.push(result);
    }
    CreatePartitionsResponse::default().with_results(results)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::TopicName;

    use super::*;
    use crate::authorizer::{AclBinding, PatternType, Permission, ResourceType};
    use crate::broker::Advertised;
    use crate::config::Config;
    use crate::security::principal::KafkaPrincipal;

    fn allow(topic: &str, operation: Operation) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: topic.into(),
            pattern_type: PatternType::Literal,
            principal: "User:alice".into(),
            host: "*".into(),
            operation,
            permission: Permission::Allow,
        }
    }

    /// CreateTopics v5+ tells the created topic's configs only to a principal allowed to
    /// DESCRIBE_CONFIGS it; others get TOPIC_AUTHORIZATION_FAILED as its config error, as Kafka.
    #[tokio::test]
    async fn created_topics_configs_need_describe_configs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let advertised = Advertised {
            host: "127.0.0.1".into(),
            port: 9092,
        };
        let broker = Arc::new(
            Broker::open(Config::for_data_dir(dir.path()), advertised)
                .await
                .expect("open"),
        );
        broker
            .authorizer
            .add(vec![
                allow("blind", Operation::Create),
                allow("seeing", Operation::Create),
                allow("seeing", Operation::DescribeConfigs),
            ])
            .await
            .expect("acls");
        let alice = KafkaPrincipal::user("alice");
        let who = Requester {
            principal: &alice,
            host: "127.0.0.1".parse().expect("ip"),
        };
        let req = CreateTopicsRequest::default().with_topics(
            ["blind", "seeing"]
                .into_iter()
                .map(|t| {
                    CreatableTopic::default()
                        .with_name(TopicName(str_bytes(t.to_string())))
                        .with_num_partitions(1)
                        .with_replication_factor(1)
                })
                .collect(),
        );
        let resp = create(&broker, who, req, 7).await;
        let (blind, seeing) = (&resp.topics[0], &resp.topics[1]);
        assert_eq!((blind.error_code, seeing.error_code), (0, 0));
        assert_eq!(
            blind.topic_config_error_code,
            code(ResponseError::TopicAuthorizationFailed)
        );
        assert!(blind.configs.as_ref().is_none_or(|c| c.is_empty()));
        assert_eq!(blind.num_partitions, 1);
        assert_eq!(seeing.topic_config_error_code, 0);
        assert!(seeing.configs.as_ref().is_some_and(|c| !c.is_empty()));
    }
}
