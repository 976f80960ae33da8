//! DescribeConfigs and IncrementalAlterConfigs for topics (and describing the broker's own
//! settings, which come from its flags and so are read-only).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};

use super::topics::{DEFAULT_CONFIG, DYNAMIC_TOPIC_CONFIG};
use super::{code, str_bytes};
use crate::broker::Broker;
use crate::topic::config::{self, ConfigType, DEFS};
use crate::topic::TopicError;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const STATIC_BROKER_CONFIG: i8 = 4;

pub fn describe(
    broker: &Arc<Broker>,
    req: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let results = req
        .resources
        .into_iter()
        .map(|res| {
            let mut out = DescribeConfigsResult::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name.clone());
            let wanted = |name: &str| {
                res.configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
            };
            match res.resource_type {
                TOPIC => {
                    let Some(topic) = broker.topics.get(res.resource_name.as_str()) else {
                        out.error_code = code(ResponseError::UnknownTopicOrPartition);
                        out.error_message = Some(str_bytes(format!(
                            "topic '{}' does not exist",
                            res.resource_name.as_str()
                        )));
                        return out;
                    };
                    let overrides = topic.configs();
                    out.configs = DEFS
                        .iter()
                        .filter(|d| wanted(d.name))
                        .map(|def| {
                            let default = config::default_value(def, &broker.config);
                            let overridden = overrides.0.get(def.name);
                            let mut entry = DescribeConfigsResourceResult::default()
                                .with_name(str_bytes(def.name))
                                .with_value(Some(str_bytes(
                                    overridden.cloned().unwrap_or_else(|| default.clone()),
                                )))
                                .with_config_source(if overridden.is_some() {
                                    DYNAMIC_TOPIC_CONFIG
                                } else {
                                    DEFAULT_CONFIG
                                });
                            if req.include_synonyms {
                                if let Some(v) = overridden {
                                    entry.synonyms.push(
                                        DescribeConfigsSynonym::default()
                                            .with_name(str_bytes(def.name))
                                            .with_value(Some(str_bytes(v.clone())))
                                            .with_source(DYNAMIC_TOPIC_CONFIG),
                                    );
                                }
                                if let Some(synonym) = def.broker_synonym {
                                    entry.synonyms.push(
                                        DescribeConfigsSynonym::default()
                                            .with_name(str_bytes(synonym))
                                            .with_value(Some(str_bytes(default)))
                                            .with_source(DEFAULT_CONFIG),
                                    );
                                }
                            }
                            if version >= 3 {
                                entry.config_type = def.ty as i8;
                                if req.include_documentation {
                                    entry.documentation = Some(str_bytes(def.doc));
                                }
                            }
                            entry
                        })
                        .collect();
                }
                BROKER => {
                    let name = res.resource_name.as_str();
                    if !name.is_empty() && name != broker.node_id().to_string() {
                        out.error_code = code(ResponseError::InvalidRequest);
                        out.error_message = Some(str_bytes(format!(
                            "this is broker {}, not '{name}'",
                            broker.node_id()
                        )));
                        return out;
                    }
                    out.configs = broker_configs(broker)
                        .into_iter()
                        .filter(|(n, _, _)| wanted(n))
                        .map(|(n, v, ty)| {
                            let mut e = DescribeConfigsResourceResult::default()
                                .with_name(str_bytes(n))
                                .with_value(Some(str_bytes(v)))
                                .with_read_only(true)
                                .with_config_source(STATIC_BROKER_CONFIG);
                            if version >= 3 {
                                e.config_type = ty as i8;
                            }
                            e
                        })
                        .collect();
                }
                other => {
                    out.error_code = code(ResponseError::InvalidRequest);
                    out.error_message = Some(str_bytes(format!(
                        "resource type {other} has no configs here"
                    )));
                }
            }
            out
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn broker_configs(broker: &Broker) -> Vec<(&'static str, String, ConfigType)> {
    let c = &broker.config;
    vec![
        ("broker.id", c.node_id.to_string(), ConfigType::Int),
        ("node.id", c.node_id.to_string(), ConfigType::Int),
        (
            "listeners",
            format!("PLAINTEXT://{}", c.listen),
            ConfigType::List,
        ),
        (
            "advertised.listeners",
            format!(
                "PLAINTEXT://{}:{}",
                broker.advertised.host, broker.advertised.port
            ),
            ConfigType::List,
        ),
        (
            "log.dirs",
            c.data_dir.display().to_string(),
            ConfigType::String,
        ),
        (
            "num.partitions",
            c.default_partitions.to_string(),
            ConfigType::Int,
        ),
        (
            "auto.create.topics.enable",
            c.auto_create_topics.to_string(),
            ConfigType::Boolean,
        ),
        (
            "log.segment.bytes",
            c.log_segment_bytes.to_string(),
            ConfigType::Int,
        ),
        (
            "log.retention.ms",
            c.log_retention_ms.to_string(),
            ConfigType::Long,
        ),
        (
            "log.retention.bytes",
            c.log_retention_bytes.to_string(),
            ConfigType::Long,
        ),
        (
            "message.max.bytes",
            c.message_max_bytes.to_string(),
            ConfigType::Int,
        ),
        (
            "socket.request.max.bytes",
            c.max_request_bytes.to_string(),
            ConfigType::Int,
        ),
        ("default.replication.factor", "1".into(), ConfigType::Int),
        (
            "offsets.topic.replication.factor",
            "1".into(),
            ConfigType::Short,
        ),
        ("min.insync.replicas", "1".into(), ConfigType::Int),
    ]
}

pub async fn incremental_alter(
    broker: &Arc<Broker>,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len());
    for res in req.resources {
        let mut out = AlterConfigsResourceResponse::default()
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name.clone());
        let result = match res.resource_type {
            TOPIC => alter_topic(broker, &res, req.validate_only).await,
            BROKER => Err(TopicError::InvalidConfig(
                "broker configs are set by the broker's flags at start-up".into(),
            )),
            other => Err(TopicError::InvalidConfig(format!(
                "resource type {other} has no configs here"
            ))),
        };
        if let Err(e) = result {
            out.error_code = e.code();
            out.error_message = Some(str_bytes(e.to_string()));
        }
        responses.push(out);
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

async fn alter_topic(
    broker: &Arc<Broker>,
    res: &AlterConfigsResource,
    validate_only: bool,
) -> Result<(), TopicError> {
    let name = res.resource_name.as_str();
    let topic = broker
        .topics
        .get(name)
        .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
    let mut configs = topic.configs();
    for c in &res.configs {
        let key = c.name.as_str();
        let def = config::lookup(key).ok_or_else(|| {
            TopicError::InvalidConfig(format!("unknown topic config name: {key}"))
        })?;
        let value = c.value.as_ref().map(|v| v.as_str().to_string());
        let need_value = || {
            value.clone().ok_or_else(|| {
                TopicError::InvalidConfig(format!("operation on {key} needs a value"))
            })
        };
        match c.config_operation {
            SET => {
                let v = need_value()?;
                config::validate(key, &v).map_err(TopicError::InvalidConfig)?;
                configs.0.insert(key.to_string(), v);
            }
            DELETE => {
                configs.0.remove(key);
            }
            APPEND | SUBTRACT if def.ty == ConfigType::List => {
                let current = configs.effective(key, &broker.config).unwrap_or_default();
                let mut items: Vec<String> = current
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                for item in need_value()?
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                {
                    if c.config_operation == APPEND {
                        if !items.iter().any(|i| i == item) {
                            items.push(item.to_string());
                        }
                    } else {
                        items.retain(|i| i != item);
                    }
                }
                let joined = items.join(",");
                config::validate(key, &joined).map_err(TopicError::InvalidConfig)?;
                configs.0.insert(key.to_string(), joined);
            }
            APPEND | SUBTRACT => {
                return Err(TopicError::InvalidConfig(format!(
                    "{key} is not a list; APPEND and SUBTRACT apply only to lists"
                )))
            }
            other => {
                return Err(TopicError::InvalidConfig(format!(
                    "unknown config operation {other}"
                )))
            }
        }
    }
    if validate_only {
        return Ok(());
    }
    broker.topics.set_configs(name, configs).await
}
