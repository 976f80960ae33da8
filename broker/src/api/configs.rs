//! DescribeConfigs, IncrementalAlterConfigs and (legacy) AlterConfigs, for the resource types
//! Kafka 3.9 answers them for:
//!
//! * TOPIC (2): the topic configs of `topic::config`, stored with the topic.
//! * BROKER (4): the broker's settings, which here come from its flags, so DescribeConfigs shows
//!   them read-only (STATIC_BROKER_CONFIG) and any change is refused with INVALID_REQUEST
//!   "Cannot update these configs dynamically", which is what Kafka's `ConfigAdminManager`
//!   answers for a config that is not dynamically updatable. The resource name must be empty
//!   (cluster default) or this broker's id, with Kafka's INVALID_REQUEST messages otherwise; an
//!   alteration with no configs succeeds, as in Kafka.
//! * GROUP (32, KIP-848): `consumer.session.timeout.ms` and `consumer.heartbeat.interval.ms` are
//!   validated (INVALID_CONFIG for unknown names or values outside the broker's range), stored
//!   and described (GROUP_CONFIG source), as Kafka 3.9 does; like Kafka, they have no effect on
//!   the classic-protocol groups this broker implements (see `group::configs`).
//!
//! Request-level checks follow `ConfigAdminManager` too: a resource named twice, a config named
//! twice in one resource, or a null value for anything but DELETE is INVALID_REQUEST. Other
//! resource types (BROKER_LOGGER, CLIENT_METRICS) are refused with INVALID_REQUEST.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};

use super::topics::{DEFAULT_CONFIG, DYNAMIC_TOPIC_CONFIG};
use super::{code, str_bytes};
use crate::authorizer::{Operation, Requester, Resource};
use crate::broker::Broker;
use crate::group::configs::{self as group_config, GroupConfigError, GROUP_DEFS};
use crate::topic::config::{self, ConfigType, DEFS};
use crate::topic::{TopicConfigs, TopicError};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const GROUP: i8 = 32;
const STATIC_BROKER_CONFIG: i8 = 4;

/// The error when `who` may not do `op` (DESCRIBE_CONFIGS, ALTER_CONFIGS) on the configs of
/// a resource: the topic's, the group's, or the cluster's for a broker (as Kafka checks them).
fn config_refusal(
    broker: &Broker,
    who: Requester<'_>,
    op: Operation,
    resource_type: i8,
    name: &str,
) -> Option<ResponseError> {
    let (resource, error) = match resource_type {
        TOPIC => (
            Resource::topic(name),
            ResponseError::TopicAuthorizationFailed,
        ),
        GROUP => (
            Resource::group(name),
            ResponseError::GroupAuthorizationFailed,
        ),
        _ => (
            Resource::cluster(),
            ResponseError::ClusterAuthorizationFailed,
        ),
    };
    (!broker.authorizer.authorize(who, op, &resource)).then_some(error)
}
const GROUP_CONFIG: i8 = 8;

/// Why an alteration of one resource is refused.
#[derive(Debug, thiserror::Error)]
enum ConfigError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error(transparent)]
    Topic(#[from] TopicError),
    #[error(transparent)]
    Group(#[from] GroupConfigError),
}

impl ConfigError {
    fn code(&self) -> i16 {
        match self {
            ConfigError::InvalidRequest(_) => code(ResponseError::InvalidRequest),
            ConfigError::InvalidConfig(_) => code(ResponseError::InvalidConfig),
            ConfigError::Topic(e) => e.code(),
            ConfigError::Group(GroupConfigError::Io(_)) => code(ResponseError::KafkaStorageError),
            ConfigError::Group(_) => code(ResponseError::InvalidConfig),
        }
    }
}

pub fn describe(
    broker: &Arc<Broker>,
    who: Requester<'_>,
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
            if let Some(error) = config_refusal(
                broker,
                who,
                Operation::DescribeConfigs,
                res.resource_type,
                res.resource_name.as_str(),
            ) {
                out.error_code = code(error);
                return out;
            }
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
                GROUP => {
                    let overrides = broker.group_configs.get(res.resource_name.as_str());
                    out.configs = GROUP_DEFS
                        .iter()
                        .filter(|d| wanted(d.name))
                        .map(|def| {
                            let overridden = overrides.get(def.name);
                            let mut e = DescribeConfigsResourceResult::default()
                                .with_name(str_bytes(def.name))
                                .with_value(Some(str_bytes(
                                    overridden.cloned().unwrap_or(def.default.to_string()),
                                )))
                                .with_config_source(if overridden.is_some() {
                                    GROUP_CONFIG
                                } else {
                                    DEFAULT_CONFIG
                                });
                            if req.include_synonyms {
                                if let Some(v) = overridden {
                                    e.synonyms.push(
                                        DescribeConfigsSynonym::default()
                                            .with_name(str_bytes(def.name))
                                            .with_value(Some(str_bytes(v.clone())))
                                            .with_source(GROUP_CONFIG),
                                    );
                                }
                                e.synonyms.push(
                                    DescribeConfigsSynonym::default()
                                        .with_name(str_bytes(def.broker_synonym))
                                        .with_value(Some(str_bytes(def.default.to_string())))
                                        .with_source(DEFAULT_CONFIG),
                                );
                            }
                            if version >= 3 {
                                e.config_type = ConfigType::Int as i8;
                                if req.include_documentation {
                                    e.documentation = Some(str_bytes(def.doc));
                                }
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
        ("listeners", c.listen.to_string(), ConfigType::List),
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
        (
            "queued.max.request.bytes",
            c.queued_max_request_bytes.to_string(),
            ConfigType::Int,
        ),
        (
            "connections.max.idle.ms",
            c.connections_max_idle_ms.to_string(),
            ConfigType::Long,
        ),
        (
            "max.connections",
            c.max_connections.to_string(),
            ConfigType::Int,
        ),
        (
            "max.connections.per.ip",
            c.max_connections_per_ip.to_string(),
            ConfigType::Int,
        ),
    ]
}

pub async fn incremental_alter(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let twice = named_twice(
        req.resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    let mut responses = Vec::with_capacity(req.resources.len());
    for res in &req.resources {
        let mut out = AlterConfigsResourceResponse::default()
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name.clone());
        let changes = res
            .configs
            .iter()
            .map(|c| Change {
                name: c.name.to_string(),
                op: c.config_operation,
                value: c.value.as_ref().map(|v| v.to_string()),
            })
            .collect();
        let key = (res.resource_type, res.resource_name.as_str());
        if let Some(error) = config_refusal(broker, who, Operation::AlterConfigs, key.0, key.1) {
            out.error_code = code(error);
            responses.push(out);
            continue;
        }
        let result = if twice.contains(&key) {
            Err(ConfigError::InvalidRequest(
                "Each resource must appear at most once.".into(),
            ))
        } else {
            alter(broker, key, changes, req.validate_only, false).await
        };
        if let Err(e) = result {
            out.error_code = e.code();
            out.error_message = Some(str_bytes(e.to_string()));
        }
        responses.push(out);
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// The legacy AlterConfigs: each resource's configs are replaced by those given (a config not
/// named goes back to its default). Deprecated in Kafka, but what librdkafka's `AlterConfigs`
/// and older tools send.
pub async fn alter_legacy(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: AlterConfigsRequest,
) -> AlterConfigsResponse {
    use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse as Out;
    let twice = named_twice(
        req.resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    let mut responses = Vec::with_capacity(req.resources.len());
    for res in &req.resources {
        let mut out = Out::default()
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name.clone());
        let changes = res
            .configs
            .iter()
            .map(|c| Change {
                name: c.name.to_string(),
                op: SET,
                value: c.value.as_ref().map(|v| v.to_string()),
            })
            .collect();
        let key = (res.resource_type, res.resource_name.as_str());
        if let Some(error) = config_refusal(broker, who, Operation::AlterConfigs, key.0, key.1) {
            out.error_code = code(error);
            responses.push(out);
            continue;
        }
        let result = if twice.contains(&key) {
            Err(ConfigError::InvalidRequest(
                "Each resource must appear at most once.".into(),
            ))
        } else {
            alter(broker, key, changes, req.validate_only, true).await
        };
        if let Err(e) = result {
            out.error_code = e.code();
            out.error_message = Some(str_bytes(e.to_string()));
        }
        responses.push(out);
    }
    AlterConfigsResponse::default().with_responses(responses)
}

/// The resources a request names more than once.
fn named_twice<'a>(resources: impl Iterator<Item = (i8, &'a str)>) -> Vec<(i8, &'a str)> {
    let mut seen = Vec::new();
    let mut twice = Vec::new();
    for key in resources {
        if seen.contains(&key) {
            twice.push(key);
        } else {
            seen.push(key);
        }
    }
    twice
}

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// One config change of an alter request.
struct Change {
    name: String,
    op: i8,
    value: Option<String>,
}

/// Applies `changes` to one resource: on top of its current configs, or (`replace`, legacy
/// AlterConfigs) on top of none.
async fn alter(
    broker: &Arc<Broker>,
    (resource_type, name): (i8, &str),
    changes: Vec<Change>,
    validate_only: bool,
    replace: bool,
) -> Result<(), ConfigError> {
    let mut names: Vec<&str> = changes.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(ConfigError::InvalidRequest(
            "Error due to duplicate config keys".into(),
        ));
    }
    let null: Vec<&str> = changes
        .iter()
        .filter(|c| c.op != DELETE && c.value.is_none())
        .map(|c| c.name.as_str())
        .collect();
    if !null.is_empty() {
        return Err(ConfigError::InvalidRequest(format!(
            "Null value not supported for : {}",
            null.join(", ")
        )));
    }
    match resource_type {
        TOPIC => alter_topic(broker, name, &changes, validate_only, replace).await,
        BROKER => {
            if !name.is_empty() {
                let id: i32 = name.parse().map_err(|_| {
                    ConfigError::InvalidRequest(format!(
                        "Node id must be an integer, but it is: {name}"
                    ))
                })?;
                if id != broker.node_id() {
                    return Err(ConfigError::InvalidRequest(format!(
                        "Unexpected broker id, expected {}, but received {name}",
                        broker.node_id()
                    )));
                }
            }
            if changes.is_empty() {
                return Ok(());
            }
            Err(ConfigError::InvalidRequest(format!(
                "Cannot update these configs dynamically: {} (this broker's settings are its \
                 command-line flags; see `broker --help`)",
                names.join(", ")
            )))
        }
        GROUP => {
            if name.is_empty() {
                return Err(ConfigError::InvalidRequest(
                    "Group name can't be empty".into(),
                ));
            }
            let mut configs = if replace {
                Default::default()
            } else {
                broker.group_configs.get(name)
            };
            for c in changes {
                match (c.op, c.value) {
                    (SET, Some(v)) => {
                        configs.insert(c.name, v);
                    }
                    (DELETE, _) => {
                        configs.remove(&c.name);
                    }
                    (APPEND | SUBTRACT, _) => {
                        return Err(ConfigError::InvalidConfig(format!(
                            "{} is not a list; APPEND and SUBTRACT apply only to lists",
                            c.name
                        )))
                    }
                    (other, _) => {
                        return Err(ConfigError::InvalidRequest(format!(
                            "Unknown operations type {other}"
                        )))
                    }
                }
            }
            group_config::validate(&configs)?;
            broker.group_configs.set(name, configs, validate_only)?;
            Ok(())
        }
        other => Err(ConfigError::InvalidRequest(format!(
            "Unknown resource type {other}: this broker has configs for topics (2), the broker (4) \
             and groups (32)"
        ))),
    }
}

async fn alter_topic(
    broker: &Arc<Broker>,
    name: &str,
    changes: &[Change],
    validate_only: bool,
    replace: bool,
) -> Result<(), ConfigError> {
    let topic = broker
        .topics
        .get(name)
        .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
    let mut configs = if replace {
        TopicConfigs::default()
    } else {
        topic.configs()
    };
    for c in changes {
        let key = c.name.as_str();
        let def = config::lookup(key).ok_or_else(|| {
            ConfigError::InvalidConfig(format!("unknown topic config name: {key}"))
        })?;
        let value = || {
            c.value.clone().ok_or_else(|| {
                ConfigError::InvalidRequest(format!("Null value not supported for : {key}"))
            })
        };
        match c.op {
            SET => {
                let v = value()?;
                config::validate(key, &v).map_err(ConfigError::InvalidConfig)?;
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
                for item in value()?.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if c.op == APPEND {
                        if !items.iter().any(|i| i == item) {
                            items.push(item.to_string());
                        }
                    } else {
                        items.retain(|i| i != item);
                    }
                }
                let joined = items.join(",");
                config::validate(key, &joined).map_err(ConfigError::InvalidConfig)?;
                configs.0.insert(key.to_string(), joined);
            }
            APPEND | SUBTRACT => {
                return Err(ConfigError::InvalidConfig(format!(
                    "{key} is not a list; APPEND and SUBTRACT apply only to lists"
                )))
            }
            other => {
                return Err(ConfigError::InvalidRequest(format!(
                    "Unknown operations type {other}"
                )))
            }
        }
    }
    if validate_only {
        return Ok(());
    }
    Ok(broker.topics.set_configs(name, configs).await?)
}
